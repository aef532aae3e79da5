package main

import (
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/olmhq/olm/api"
)

// apiClient returns a client for the server at OLM_HOST/OLLAMA_HOST
// (through --host), sending OLM_API_KEY as a bearer token when set.
func apiClient(g *Globals) (*api.Client, error) {
	u, err := api.ParseHost(g.Host)
	if err != nil {
		return nil, exitError{2, fmt.Errorf("OLM_HOST: %w", err)}
	}
	return api.NewClient(u, api.ClientOptions{APIKey: os.Getenv("OLM_API_KEY")}), nil
}

// connError explains a failure to reach the server.
func connError(g *Globals, err error) error {
	if err == nil {
		return nil
	}
	if strings.Contains(err.Error(), "connection refused") {
		host := g.Host
		if host == "" {
			host = api.DefaultHost
		}
		return fmt.Errorf("could not connect to the olm server at %s; start it with `olm serve` (or set OLM_HOST): %w", host, err)
	}
	return err
}

// humanDuration prints how long from now until t, like Ollama's ps.
func humanUntil(t time.Time, now time.Time) string {
	if t.IsZero() || t.Year() > 2200 {
		return "Forever"
	}
	d := t.Sub(now)
	if d < 0 {
		return "Stopping..."
	}
	switch {
	case d < time.Minute:
		return fmt.Sprintf("%d seconds from now", int(d.Seconds()))
	case d < time.Hour:
		return fmt.Sprintf("%d minutes from now", int(d.Minutes()))
	case d < 48*time.Hour:
		return fmt.Sprintf("%d hours from now", int(d.Hours()))
	}
	return fmt.Sprintf("%d days from now", int(d.Hours()/24))
}
