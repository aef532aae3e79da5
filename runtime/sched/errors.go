package sched

import "errors"

// Sentinel errors, wrapped with the model's name.
var (
	// ErrQueueFull means too many requests already wait for the model; the
	// server answers 503 Service Unavailable.
	ErrQueueFull = errors.New("server busy: too many requests queued for the model, try again later")

	// ErrClosed means the scheduler was closed.
	ErrClosed = errors.New("scheduler closed")

	// ErrNotLoaded means Unload found no loaded runner for the model.
	ErrNotLoaded = errors.New("model is not loaded")

	// ErrNoModel means a Spec has no model path.
	ErrNoModel = errors.New("no model path in spec")
)
