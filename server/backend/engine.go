package backend

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/olmhq/olm/api"
	"github.com/olmhq/olm/runtime/sched"
	"github.com/olmhq/olm/server"
)

// Engine is server.Engine over the runtime scheduler. Safe for concurrent use.
type Engine struct {
	// Sched is the scheduler; required.
	Sched *sched.Scheduler
}

var _ server.Engine = (*Engine)(nil)

// Acquire implements server.Engine.
func (e *Engine) Acquire(ctx context.Context, t server.Target) (server.Runner, func(), error) {
	spec := sched.Spec{Name: t.Model.Name, Digest: t.Model.Digest, Load: t.Load, Size: t.Model.Size, Details: t.Model}
	if t.KeepAlive != nil {
		ka := *t.KeepAlive
		if ka == api.Forever {
			ka = -1
		}
		spec.KeepAlive = &ka
	}
	lease, err := e.Sched.Get(ctx, spec)
	if err != nil {
		if errors.Is(err, sched.ErrQueueFull) {
			return nil, nil, fmt.Errorf("%w: %w", server.ErrBusy, err)
		}
		return nil, nil, err
	}
	return lease.Client(), lease.Release, nil
}

// Unload implements server.Engine; a model that is not loaded is no error.
func (e *Engine) Unload(ctx context.Context, name string) error {
	err := e.Sched.Unload(ctx, name)
	if errors.Is(err, sched.ErrNotLoaded) {
		return nil
	}
	return err
}

// Running implements server.Engine.
func (e *Engine) Running(ctx context.Context) ([]server.Running, error) {
	var out []server.Running
	for _, st := range e.Sched.List() {
		m, ok := st.Details.(*server.Model)
		if !ok {
			m = &server.Model{Name: st.Name, Digest: st.Digest}
		}
		exp := st.ExpiresAt
		if exp.IsZero() {
			// Ollama clients expect a time; "never" is far in the future.
			exp = time.Date(2318, 1, 1, 0, 0, 0, 0, time.UTC)
		}
		out = append(out, server.Running{Model: m, Size: st.Size, SizeVRAM: st.SizeVRAM, ExpiresAt: exp, ContextLength: st.Context})
	}
	return out, nil
}
