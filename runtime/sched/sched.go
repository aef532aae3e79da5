package sched

import (
	"context"
	"encoding/json"
	"fmt"
	"sort"
	"sync"
	"time"

	"github.com/olmhq/olm/runtime/runner"
)

// Defaults used when an Options field is zero.
const (
	DefaultKeepAlive   = 5 * time.Minute
	DefaultMaxLoaded   = 3
	DefaultNumParallel = 1
	DefaultMaxQueue    = 512
)

// Runner is a started model runner as the scheduler sees it.
// *runner.Process implements it.
type Runner interface {
	// Client talks to the runner.
	Client() *runner.Client
	// Info is the model information the runner reported at start.
	Info() *runner.Info
	// Done is closed when the runner has exited.
	Done() <-chan struct{}
	// Err says why the runner exited (nil while it runs).
	Err() error
	// Close stops the runner and waits for it to exit.
	Close() error
}

// Starter starts a runner for load. ctx bounds the start only.
type Starter func(ctx context.Context, load runner.LoadOptions) (Runner, error)

// ProcessStarter returns a Starter that runs `olm runner` child processes
// with base (its Load field is replaced by each start's options).
func ProcessStarter(base runner.StartOptions) Starter {
	return func(ctx context.Context, load runner.LoadOptions) (Runner, error) {
		o := base
		o.Load = load
		p, err := runner.Start(ctx, o)
		if err != nil {
			return nil, err
		}
		return p, nil
	}
}

// Options configure a Scheduler. Only Start is required.
type Options struct {
	// Start starts runners; required.
	Start Starter
	// KeepAlive is how long an idle runner stays loaded when a request
	// does not say: nil means DefaultKeepAlive (5m), 0 unloads as soon as
	// the runner is idle, a negative value keeps it loaded until Unload or
	// Close (OLM_KEEP_ALIVE).
	KeepAlive *time.Duration
	// MaxLoaded is the most runners loaded at once; 0 means
	// DefaultMaxLoaded (3) (OLM_MAX_LOADED_MODELS).
	MaxLoaded int
	// NumParallel is the number of slots of each runner (requests it
	// serves at once) when a Spec's Load.Parallel is 0; 0 means
	// DefaultNumParallel (1) (OLM_NUM_PARALLEL).
	NumParallel int
	// MaxQueue is the most requests that may wait for one model (all its
	// specs together); more get ErrQueueFull. 0 means DefaultMaxQueue (512).
	MaxQueue int
	// StartTimeout bounds one runner start; 0 means runner.DefaultStartTimeout.
	StartTimeout time.Duration
	// MemoryLimit is the most bytes of model (Spec.Size, else the size the
	// runner reports) that loaded runners may hold together: loading a
	// model that would go over it first evicts idle runners, least
	// recently used first, or waits for busy ones. A model alone is always
	// loaded, whatever its size. 0 means no limit (only MaxLoaded);
	// SystemMemory gives a sensible value.
	MemoryLimit int64
}

// Spec names the model a request wants and how to load it.
type Spec struct {
	// Name is the model's name as users wrote it, shown by List
	// (for example "llama3.2:latest"); the scheduler loads one runner per
	// Name ("" uses Load.Model).
	Name string
	// Digest identifies the model's content (its manifest digest); List
	// reports it. Runners are shared by requests with equal Name, Digest
	// and Load; a request for the same Name with another Digest or Load
	// reloads the model (see Get).
	Digest string
	// Load are the runner's load options; Load.Model is required.
	// Load.Parallel 0 means Options.NumParallel.
	Load runner.LoadOptions
	// Size is the model's size in bytes for List; 0 uses the runner's
	// reported tensor size.
	Size int64
	// Details is opaque data List returns with the model (the server puts
	// its /api/ps details there).
	Details any
	// KeepAlive overrides Options.KeepAlive for this request: how long the
	// runner stays loaded after the request, 0 = unload when idle,
	// negative = until Unload. nil uses the default.
	KeepAlive *time.Duration
}

// Status describes one loaded model (for /api/ps).
type Status struct {
	// Name and Digest are from the Spec that loaded it.
	Name   string
	Digest string
	// Model is the GGUF path.
	Model string
	// Size is the model's size in bytes; SizeVRAM the part held in GPU
	// memory (0 on CPU).
	Size     int64
	SizeVRAM int64
	// ExpiresAt is when the idle runner will be unloaded; zero means never
	// (negative keep_alive).
	ExpiresAt time.Time
	// Context is the context length of each slot; Parallel the slots.
	Context  int
	Parallel int
	// Active is the number of requests using it now.
	Active int
	// Details is Spec.Details.
	Details any
	// Info is what the runner reported at start.
	Info *runner.Info
}

// Scheduler hands out runners; see the package documentation.
type Scheduler struct {
	opts Options

	mu           sync.Mutex
	models       map[string]*loaded   // by model (Spec.Name): its one runner, starting or ready
	queue        map[string][]*waiter // by model: Gets waiting, in arrival order
	stopping     map[string]int       // by model: runners being stopped, still holding memory
	closing      int                  // runners being stopped, all models
	closingBytes int64                // their sizes
	changed      chan struct{}        // closed and replaced on every change
	closed       bool
}

// waiter is one Get waiting for its model.
type waiter struct{ key string }

// loaded is one runner, starting or ready.
type loaded struct {
	name     string // the model (Spec.Name, else Load.Model)
	key      string // the whole spec: name, digest and load options
	spec     Spec
	parallel int

	ready     chan struct{} // closed when the start finished
	r         Runner        // set before ready is closed, on success
	startErr  error
	cancel    context.CancelFunc // cancels the start
	abandoned bool               // start cancelled: nobody wanted it any more
	held      int64              // bytes counted by hold

	refs      int
	lastUsed  time.Time
	expiresAt time.Time
	timer     *time.Timer
	gen       int  // bumps on every use, so stale timers do nothing
	unload    bool // take no new requests; stop as soon as idle (Unload, or a reload)
	dead      bool // exited or removed
}

// New returns a scheduler with opts.
func New(opts Options) *Scheduler {
	if opts.MaxLoaded <= 0 {
		opts.MaxLoaded = DefaultMaxLoaded
	}
	if opts.NumParallel <= 0 {
		opts.NumParallel = DefaultNumParallel
	}
	if opts.MaxQueue <= 0 {
		opts.MaxQueue = DefaultMaxQueue
	}
	if opts.KeepAlive == nil {
		d := DefaultKeepAlive
		opts.KeepAlive = &d
	}
	return &Scheduler{
		opts:     opts,
		models:   map[string]*loaded{},
		queue:    map[string][]*waiter{},
		stopping: map[string]int{},
		changed:  make(chan struct{}),
	}
}

// broadcast wakes every waiter; s.mu must be held.
func (s *Scheduler) broadcast() {
	close(s.changed)
	s.changed = make(chan struct{})
}

// modelOf is the model a spec names: one runner at most per model.
func modelOf(spec Spec) string {
	if spec.Name != "" {
		return spec.Name
	}
	return spec.Load.Model
}

func keyOf(spec Spec) string {
	b, _ := json.Marshal(struct {
		N, D string
		L    runner.LoadOptions
	}{spec.Name, spec.Digest, spec.Load})
	return string(b)
}

// Lease is one request's use of a runner. Release it when the request ends.
type Lease struct {
	s    *Scheduler
	l    *loaded
	ka   time.Duration
	once sync.Once
}

// Client talks to the leased runner.
func (l *Lease) Client() *runner.Client { return l.l.r.Client() }

// Info is the leased runner's model information.
func (l *Lease) Info() *runner.Info { return l.l.r.Info() }

// Runner is the leased runner.
func (l *Lease) Runner() Runner { return l.l.r }

// Release ends the lease; the runner's keep_alive starts when its last
// lease is released. It is idempotent.
func (l *Lease) Release() {
	l.once.Do(func() { l.s.release(l.l, l.ka) })
}

// Get returns a lease on a ready runner for spec, starting one if needed.
// It waits (until ctx ends) while the runner's slots are all in use or, to
// load a new model, while every loaded runner is busy. A start failure (for
// example a corrupt GGUF: runner.ErrRunnerExited with the runner's message)
// is returned to every request waiting for that start.
//
// A model has one runner at a time. When spec's digest or load options
// differ from its loaded runner's, the runner takes no new requests, is
// stopped once its requests in flight finish, and spec's runner is started
// after it has exited. Requests for one model are served in arrival order
// across specs: a request waits behind an earlier one that wants another
// spec, so requests that alternate between two specs reload the model
// between them rather than starve one another.
//
// When every request waiting for a runner that is still starting gives up
// (ctx ends), the start is cancelled and its process stopped.
func (s *Scheduler) Get(ctx context.Context, spec Spec) (*Lease, error) {
	if spec.Load.Model == "" {
		return nil, fmt.Errorf("%s: %w", spec.Name, ErrNoModel)
	}
	if spec.Load.Parallel <= 0 {
		spec.Load.Parallel = s.opts.NumParallel
	}
	ka := *s.opts.KeepAlive
	if spec.KeepAlive != nil {
		ka = *spec.KeepAlive
	}
	name, key := modelOf(spec), keyOf(spec)
	var w *waiter // set while queued
	s.mu.Lock()
	defer func() {
		if w != nil {
			s.dequeue(name, w)
		}
		s.mu.Unlock()
	}()
	for {
		if s.closed {
			return nil, ErrClosed
		}
		l := s.models[name]
		if l != nil && l.r != nil && exited(l.r) {
			s.remove(l) // its watcher has not caught up yet
			s.broadcast()
			continue
		}
		// An earlier request for another spec of this model goes first.
		blocked := s.earlier(name, w, func(k string) bool { return k != key })
		switch {
		case l != nil && l.key == key && !l.unload:
			if blocked || l.refs >= l.parallel {
				break // wait for a slot, or for the earlier request's reload
			}
			l.refs++
			l.gen++
			if l.timer != nil {
				l.timer.Stop()
				l.timer = nil
			}
			l.spec.Details, l.spec.Size = spec.Details, spec.Size
			if w != nil {
				s.dequeue(name, w)
				w = nil
			}
			s.mu.Unlock()
			err := s.waitReady(ctx, l)
			s.mu.Lock()
			if err != nil {
				if l.startErr == nil { // we gave up; the start goes on
					l.refs--
					if !s.abandonUnwanted(l) {
						s.idle(l, ka)
					}
					s.broadcast()
				}
				return nil, err
			}
			return &Lease{s: s, l: l, ka: ka}, nil
		case l != nil:
			// Loaded with another spec (or being unloaded). Unless an
			// earlier request still wants that spec, drain it: it takes no
			// new requests and stops when its last one ends.
			if l.unload || l.key == key || s.earlier(name, w, func(k string) bool { return k == l.key }) {
				break
			}
			l.unload = true
			switch {
			case l.refs > 0:
			case l.r != nil:
				s.stop(l)
			default:
				s.abandon(l)
			}
			s.broadcast()
			continue
		case blocked || s.stopping[name] > 0:
			// Wait for the earlier request, or for this model's previous
			// runner to exit: a model is never loaded twice.
		case s.loadedCount() < s.opts.MaxLoaded && s.fits(spec.Size):
			sctx, cancel := context.WithCancel(context.Background())
			l := &loaded{name: name, key: key, spec: spec, parallel: spec.Load.Parallel, ready: make(chan struct{}), cancel: cancel}
			s.models[name] = l
			go s.start(sctx, l)
			continue // take a slot of it on the next pass
		default:
			victim := s.lruIdle()
			if victim == nil {
				break // every loaded runner is busy
			}
			s.remove(victim)
			s.hold(victim)
			s.mu.Unlock()
			victim.r.Close()
			s.mu.Lock()
			s.unhold(victim)
			s.broadcast()
			continue
		}
		// Wait for a slot, for room to load, or for the start to finish.
		if w == nil {
			if len(s.queue[name]) >= s.opts.MaxQueue {
				return nil, fmt.Errorf("%s: %w", spec.Name, ErrQueueFull)
			}
			w = &waiter{key: key}
			s.queue[name] = append(s.queue[name], w)
		}
		ch := s.changed
		s.mu.Unlock()
		select {
		case <-ch:
			s.mu.Lock()
		case <-ctx.Done():
			s.mu.Lock()
			s.dequeue(name, w)
			w = nil
			if l := s.models[name]; l != nil {
				s.abandonUnwanted(l)
			}
			return nil, context.Cause(ctx)
		}
	}
}

// abandonUnwanted cancels l's start when no request holds or waits for it
// (s.mu held) and reports whether it did.
func (s *Scheduler) abandonUnwanted(l *loaded) bool {
	if l.r != nil || l.refs > 0 || l.dead || s.earlier(l.name, nil, func(k string) bool { return k == l.key }) {
		return false
	}
	s.abandon(l)
	return true
}

// earlier reports whether a request queued for model name before w (before
// everyone queued when w is nil) has a key for which match is true (s.mu
// held).
func (s *Scheduler) earlier(name string, w *waiter, match func(key string) bool) bool {
	for _, q := range s.queue[name] {
		if q == w {
			return false
		}
		if match(q.key) {
			return true
		}
	}
	return false
}

// dequeue takes w out of name's queue and wakes the others, whose turn may
// have come (s.mu held).
func (s *Scheduler) dequeue(name string, w *waiter) {
	q := s.queue[name]
	for i, x := range q {
		if x == w {
			q = append(q[:i:i], q[i+1:]...)
			break
		}
	}
	if len(q) == 0 {
		delete(s.queue, name)
	} else {
		s.queue[name] = q
	}
	s.broadcast()
}

// exited reports whether r's process is gone.
func exited(r Runner) bool {
	select {
	case <-r.Done():
		return true
	default:
		return false
	}
}

// waitReady waits for l's start to finish and returns its error.
func (s *Scheduler) waitReady(ctx context.Context, l *loaded) error {
	select {
	case <-l.ready:
		if l.startErr != nil {
			return fmt.Errorf("%s: %w", l.spec.Name, l.startErr)
		}
		return nil
	case <-ctx.Done():
		return context.Cause(ctx)
	}
}

// start runs the Starter for l and publishes the result. ctx is cancelled
// when l is abandoned.
func (s *Scheduler) start(ctx context.Context, l *loaded) {
	defer l.cancel()
	if s.opts.StartTimeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, s.opts.StartTimeout)
		defer cancel()
	}
	r, err := s.opts.Start(ctx, l.spec.Load)
	s.mu.Lock()
	defer s.mu.Unlock()
	if l.abandoned {
		// Nobody waits for it; abandon counted it as stopping until now.
		l.startErr = fmt.Errorf("start abandoned: %w", context.Canceled)
		close(l.ready)
		if r != nil { // started before it noticed the cancellation
			s.mu.Unlock()
			r.Close()
			s.mu.Lock()
		}
		s.unhold(l)
		s.broadcast()
		return
	}
	if err != nil {
		if s.closed {
			err = ErrClosed
		}
		l.startErr = err
		s.remove(l)
		close(l.ready)
		s.broadcast()
		return
	}
	l.r = r
	l.lastUsed = time.Now()
	close(l.ready)
	if s.closed || l.dead {
		s.remove(l)
		go r.Close()
		return
	}
	if l.refs == 0 { // everyone who waited gave up
		s.idle(l, *s.opts.KeepAlive)
	}
	go s.watch(l)
	s.broadcast()
}

// abandon cancels l's start, which nobody waits for any more (s.mu held).
// l counts as loaded until the start has returned and its process is gone.
func (s *Scheduler) abandon(l *loaded) {
	s.remove(l)
	l.abandoned = true
	s.hold(l)
	l.cancel()
}

// watch forgets l when its runner exits on its own.
func (s *Scheduler) watch(l *loaded) {
	<-l.r.Done()
	s.mu.Lock()
	s.remove(l)
	s.broadcast()
	s.mu.Unlock()
}

// remove takes l out of the table (s.mu held). It does not stop the runner.
func (s *Scheduler) remove(l *loaded) {
	l.dead = true
	l.gen++
	if l.timer != nil {
		l.timer.Stop()
		l.timer = nil
	}
	if s.models[l.name] == l {
		delete(s.models, l.name)
	}
}

// hold counts l, taken out of the table, as holding memory until unhold:
// while its process stops (s.mu held).
func (s *Scheduler) hold(l *loaded) {
	l.held = l.size()
	s.closing++
	s.closingBytes += l.held
	s.stopping[l.name]++
}

// unhold undoes hold once l's process is gone (s.mu held).
func (s *Scheduler) unhold(l *loaded) {
	s.closing--
	s.closingBytes -= l.held
	if s.stopping[l.name]--; s.stopping[l.name] <= 0 {
		delete(s.stopping, l.name)
	}
}

// loadedCount is the number of runners holding memory (s.mu held).
func (s *Scheduler) loadedCount() int { return len(s.models) + s.closing }

// size is the memory l counts for: Spec.Size, else the runner's report.
func (l *loaded) size() int64 {
	if l.spec.Size > 0 {
		return l.spec.Size
	}
	if l.r != nil {
		if i := l.r.Info(); i != nil {
			return int64(i.Size)
		}
	}
	return 0
}

// fits reports whether a model of size bytes may be loaded now under
// MemoryLimit (s.mu held).
func (s *Scheduler) fits(size int64) bool {
	if s.opts.MemoryLimit <= 0 || s.loadedCount() == 0 {
		return true
	}
	used := s.closingBytes
	for _, l := range s.models {
		used += l.size()
	}
	return used+size <= s.opts.MemoryLimit
}

// lruIdle returns the least recently used ready runner with no requests,
// or nil (s.mu held).
func (s *Scheduler) lruIdle() *loaded {
	var best *loaded
	for _, l := range s.models {
		if l.refs > 0 || l.r == nil || l.dead {
			continue
		}
		if best == nil || l.lastUsed.Before(best.lastUsed) {
			best = l
		}
	}
	return best
}

// release ends one lease on l.
func (s *Scheduler) release(l *loaded, ka time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	l.refs--
	l.lastUsed = time.Now()
	s.idle(l, ka)
	s.broadcast()
}

// idle arms l's keep-alive when its last request is done (s.mu held).
func (s *Scheduler) idle(l *loaded, ka time.Duration) {
	if l.dead {
		return
	}
	l.gen++
	if l.timer != nil {
		l.timer.Stop()
		l.timer = nil
	}
	switch {
	case ka < 0:
		l.expiresAt = time.Time{}
	default:
		l.expiresAt = time.Now().Add(ka)
	}
	if l.refs > 0 || l.r == nil {
		return
	}
	if l.unload || ka == 0 {
		s.stop(l)
		return
	}
	if ka > 0 {
		gen := l.gen
		l.timer = time.AfterFunc(ka, func() {
			s.mu.Lock()
			defer s.mu.Unlock()
			if l.gen == gen && l.refs == 0 && !l.dead {
				s.stop(l)
				s.broadcast()
			}
		})
	}
}

// stop removes l and stops its runner in the background, counting it as
// loaded until it has exited (s.mu held).
func (s *Scheduler) stop(l *loaded) {
	s.remove(l)
	s.hold(l)
	go func() {
		l.r.Close()
		s.mu.Lock()
		s.unhold(l)
		s.broadcast()
		s.mu.Unlock()
	}()
}

// Unload stops the runners of the model called name: at once when idle,
// else as soon as their requests finish. It returns ErrNotLoaded when
// none is loaded.
func (s *Scheduler) Unload(ctx context.Context, name string) error {
	s.mu.Lock()
	var wait []*loaded
	for _, l := range s.models {
		if l.spec.Name != name {
			continue
		}
		l.unload = true
		wait = append(wait, l)
		if l.refs == 0 && l.r != nil {
			s.stop(l)
		}
	}
	s.broadcast()
	s.mu.Unlock()
	if len(wait) == 0 {
		return fmt.Errorf("%s: %w", name, ErrNotLoaded)
	}
	return nil
}

// List returns the loaded (ready) models, by name.
func (s *Scheduler) List() []Status {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]Status, 0, len(s.models))
	for _, l := range s.models {
		if l.r == nil || l.dead {
			continue
		}
		info := l.r.Info()
		st := Status{
			Name: l.spec.Name, Digest: l.spec.Digest, Model: l.spec.Load.Model,
			Size: l.spec.Size, ExpiresAt: l.expiresAt, Parallel: l.parallel,
			Active: l.refs, Details: l.spec.Details, Info: info,
		}
		if info != nil {
			if st.Size == 0 {
				st.Size = int64(info.Size)
			}
			st.SizeVRAM = int64(info.SizeVRAM)
			st.Context = info.Context
		}
		if l.refs > 0 && *s.opts.KeepAlive >= 0 && st.ExpiresAt.IsZero() {
			st.ExpiresAt = time.Now().Add(*s.opts.KeepAlive)
		}
		out = append(out, st)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

// Close stops every runner and makes later Gets fail with ErrClosed.
// Requests in flight fail with runner.ErrRunnerExited.
func (s *Scheduler) Close() error {
	s.mu.Lock()
	s.closed = true
	var rs []Runner
	for _, l := range s.models {
		if l.r != nil {
			rs = append(rs, l.r)
		} else {
			l.cancel() // a start under way is stopped
		}
		s.remove(l)
	}
	s.broadcast()
	s.mu.Unlock()
	var wg sync.WaitGroup
	for _, r := range rs {
		wg.Add(1)
		go func() { defer wg.Done(); r.Close() }()
	}
	wg.Wait()
	return nil
}
