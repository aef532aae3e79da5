package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"text/tabwriter"
	"time"

	"github.com/olmhq/olm/blobstore"
	"github.com/olmhq/olm/oci"
)

// LsCmd lists local models like `ollama list`.
type LsCmd struct {
	JSON bool `name:"json" help:"Print a JSON array instead of a table."`
}

// lsEntry is one row of `olm ls --json`.
type lsEntry struct {
	Name      string    `json:"name"`
	Reference string    `json:"reference"`
	ID        string    `json:"id"`
	Digest    string    `json:"digest"`
	MediaType string    `json:"mediaType"`
	Format    string    `json:"format,omitempty"`
	Size      int64     `json:"size"`
	Modified  time.Time `json:"modified"`
}

// Run prints the models.
func (c *LsCmd) Run(ctx context.Context, g *Globals) error {
	s, _, err := openLocalStore(g)
	if err != nil {
		return err
	}
	entries, err := s.List(ctx)
	if err != nil {
		return err
	}
	naming := modelNaming()
	rows := make([]lsEntry, 0, len(entries))
	for _, e := range entries {
		row := lsEntry{Name: e.Name, Reference: e.Name, ID: e.Descriptor.Digest.Encoded()[:12], Digest: e.Descriptor.Digest.String(),
			MediaType: e.Descriptor.MediaType, Modified: e.Modified}
		if ref, err := naming.Parse(e.Name); err == nil {
			row.Name = naming.Short(ref)
		}
		row.Size, row.Format = modelSize(ctx, s, e)
		rows = append(rows, row)
	}
	if c.JSON {
		enc := json.NewEncoder(os.Stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(rows)
	}
	tw := tabwriter.NewWriter(os.Stdout, 0, 4, 4, ' ', 0)
	fmt.Fprintln(tw, "NAME\tID\tSIZE\tMODIFIED")
	for _, r := range rows {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", r.Name, r.ID, humanSize(r.Size), ago(r.Modified))
	}
	return tw.Flush()
}

// modelSize sums the layers of a stored manifest and detects its format.
func modelSize(ctx context.Context, s *blobstore.Store, e blobstore.Entry) (int64, string) {
	b, err := s.ReadBlob(ctx, e.Descriptor.Digest, oci.MaxManifestSize)
	if err != nil {
		return 0, ""
	}
	var m struct {
		Config struct{ Size int64 }   `json:"config"`
		Layers []struct{ Size int64 } `json:"layers"`
	}
	json.Unmarshal(b, &m)
	n := m.Config.Size
	for _, l := range m.Layers {
		n += l.Size
	}
	f, _ := oci.DetectFormat(b, e.Descriptor.MediaType)
	return n, string(f)
}

// ago formats a time as `ollama list` does ("3 minutes ago").
func ago(t time.Time) string {
	if t.IsZero() {
		return "unknown"
	}
	d := time.Since(t)
	plural := func(n int, unit string) string {
		if n == 1 {
			if unit == "hour" {
				return "An hour ago"
			}
			return "A " + unit + " ago"
		}
		return fmt.Sprintf("%d %ss ago", n, unit)
	}
	switch {
	case d < time.Minute:
		return "Less than a minute ago"
	case d < time.Hour:
		return plural(int(d.Minutes()), "minute")
	case d < 24*time.Hour:
		return plural(int(d.Hours()), "hour")
	case d < 7*24*time.Hour:
		return fmt.Sprintf("%d days ago", int(d.Hours()/24))
	case d < 30*24*time.Hour:
		return fmt.Sprintf("%d weeks ago", int(d.Hours()/24/7))
	}
	return fmt.Sprintf("%d months ago", int(d.Hours()/24/30))
}
