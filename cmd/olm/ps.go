package main

import (
	"context"
	"fmt"
	"os"
	"text/tabwriter"
	"time"
)

// PsCmd lists the models loaded by the server.
type PsCmd struct{}

// Run prints one line per loaded model.
func (c *PsCmd) Run(ctx context.Context, g *Globals) error {
	cl, err := apiClient(g)
	if err != nil {
		return err
	}
	res, err := cl.ListRunning(ctx)
	if err != nil {
		return connError(g, err)
	}
	w := tabwriter.NewWriter(os.Stdout, 0, 0, 3, ' ', 0)
	fmt.Fprintln(w, "NAME\tID\tSIZE\tPROCESSOR\tCONTEXT\tUNTIL")
	now := time.Now()
	for _, m := range res.Models {
		id := m.Digest
		if len(id) > 12 {
			id = id[:12]
		}
		proc := "100% CPU"
		switch {
		case m.Size > 0 && m.SizeVRAM >= m.Size:
			proc = "100% GPU"
		case m.SizeVRAM > 0 && m.Size > 0:
			gpu := m.SizeVRAM * 100 / m.Size
			proc = fmt.Sprintf("%d%%/%d%% CPU/GPU", 100-gpu, gpu)
		}
		fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%d\t%s\n", m.Name, id, humanBytes(m.Size), proc, m.ContextLength, humanUntil(m.ExpiresAt, now))
	}
	return w.Flush()
}
