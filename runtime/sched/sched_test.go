package sched

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/olmhq/olm/runtime/runner"
)

// fakeRunner stands in for a runner process.
type fakeRunner struct {
	model  string
	done   chan struct{}
	once   sync.Once
	closed atomic.Bool
	err    error
}

func (f *fakeRunner) Client() *runner.Client { return nil }
func (f *fakeRunner) Info() *runner.Info {
	return &runner.Info{ModelPath: f.model, Size: 1000, Context: 2048}
}
func (f *fakeRunner) Done() <-chan struct{} { return f.done }
func (f *fakeRunner) Err() error {
	select {
	case <-f.done:
		return f.err
	default:
		return nil
	}
}
func (f *fakeRunner) Close() error {
	f.closed.Store(true)
	f.exit(fmt.Errorf("%w: the runner was stopped", runner.ErrRunnerExited))
	return nil
}

// crash makes the fake exit on its own.
func (f *fakeRunner) crash() {
	f.exit(fmt.Errorf("%w: segfault", runner.ErrRunnerExited))
}

func (f *fakeRunner) exit(err error) {
	f.once.Do(func() { f.err = err; close(f.done) })
}

// fakeStarter records the runners it starts.
type fakeStarter struct {
	mu      sync.Mutex
	runners []*fakeRunner
	fail    map[string]error // model path → start error
	delay   time.Duration
}

func (fs *fakeStarter) start(ctx context.Context, load runner.LoadOptions) (Runner, error) {
	if fs.delay > 0 {
		time.Sleep(fs.delay)
	}
	fs.mu.Lock()
	defer fs.mu.Unlock()
	if err := fs.fail[load.Model]; err != nil {
		return nil, err
	}
	r := &fakeRunner{model: load.Model, done: make(chan struct{})}
	fs.runners = append(fs.runners, r)
	return r, nil
}

func (fs *fakeStarter) started(model string) []*fakeRunner {
	fs.mu.Lock()
	defer fs.mu.Unlock()
	var out []*fakeRunner
	for _, r := range fs.runners {
		if r.model == model {
			out = append(out, r)
		}
	}
	return out
}

func dur(d time.Duration) *time.Duration { return &d }

func spec(name string) Spec {
	return Spec{Name: name, Load: runner.LoadOptions{Model: "/models/" + name + ".gguf"}}
}

func newSched(t *testing.T, fs *fakeStarter, o Options) *Scheduler {
	t.Helper()
	o.Start = fs.start
	s := New(o)
	t.Cleanup(func() { s.Close() })
	return s
}

func get(t *testing.T, s *Scheduler, sp Spec) *Lease {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	l, err := s.Get(ctx, sp)
	if err != nil {
		t.Fatalf("Get(%s): %v", sp.Name, err)
	}
	return l
}

// eventually polls cond for up to 2s.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(2 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting: %s", what)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

func TestGetStartsOnceAndShares(t *testing.T) {
	fs := &fakeStarter{delay: 20 * time.Millisecond}
	s := newSched(t, fs, Options{NumParallel: 4})
	var wg sync.WaitGroup
	leases := make([]*Lease, 4)
	for i := range leases {
		wg.Add(1)
		go func() { defer wg.Done(); leases[i] = get(t, s, spec("a")) }()
	}
	wg.Wait()
	if n := len(fs.started("/models/a.gguf")); n != 1 {
		t.Fatalf("started %d runners for 4 concurrent requests with 4 slots, want 1", n)
	}
	for _, l := range leases {
		if l.Runner() != leases[0].Runner() {
			t.Fatal("leases got different runners")
		}
		l.Release()
		l.Release() // idempotent
	}
	st := s.List()
	if len(st) != 1 || st[0].Active != 0 || st[0].Parallel != 4 || st[0].Size != 1000 || st[0].Context != 2048 {
		t.Fatalf("List = %+v", st)
	}
}

func TestSlotsLimitConcurrency(t *testing.T) {
	fs := &fakeStarter{}
	s := newSched(t, fs, Options{NumParallel: 1})
	l1 := get(t, s, spec("a"))
	got := make(chan *Lease)
	go func() {
		l, err := s.Get(context.Background(), spec("a"))
		if err != nil {
			t.Error(err)
		}
		got <- l
	}()
	select {
	case <-got:
		t.Fatal("second request got the only slot while the first held it")
	case <-time.After(50 * time.Millisecond):
	}
	l1.Release()
	select {
	case l2 := <-got:
		l2.Release()
	case <-time.After(2 * time.Second):
		t.Fatal("waiting request not served after release")
	}
}

func TestKeepAlive(t *testing.T) {
	fs := &fakeStarter{}
	s := newSched(t, fs, Options{KeepAlive: dur(40 * time.Millisecond)})

	l := get(t, s, spec("a"))
	l.Release()
	r := fs.started("/models/a.gguf")[0]
	st := s.List()
	if len(st) != 1 || st[0].ExpiresAt.IsZero() || time.Until(st[0].ExpiresAt) > 40*time.Millisecond {
		t.Fatalf("List after release = %+v, want an expiry within 40ms", st)
	}
	eventually(t, "idle runner unloaded after keep_alive", r.closed.Load)
	eventually(t, "List empty", func() bool { return len(s.List()) == 0 })

	// keep_alive 0: unloaded as soon as the request ends.
	sp := spec("b")
	sp.KeepAlive = dur(0)
	l = get(t, s, sp)
	rb := fs.started("/models/b.gguf")[0]
	if rb.closed.Load() {
		t.Fatal("runner closed while in use")
	}
	l.Release()
	eventually(t, "keep_alive 0 unloads at release", rb.closed.Load)

	// negative: stays loaded.
	sp = spec("c")
	sp.KeepAlive = dur(-1)
	get(t, s, sp).Release()
	time.Sleep(100 * time.Millisecond)
	rc := fs.started("/models/c.gguf")[0]
	if rc.closed.Load() {
		t.Fatal("keep_alive -1 runner was unloaded")
	}
	if st := s.List(); len(st) != 1 || !st[0].ExpiresAt.IsZero() {
		t.Fatalf("List = %+v, want c with no expiry", st)
	}

	// A new request cancels the pending expiry.
	sp = spec("d")
	sp.KeepAlive = dur(30 * time.Millisecond)
	get(t, s, sp).Release()
	l = get(t, s, spec("d"))
	time.Sleep(80 * time.Millisecond)
	if fs.started("/models/d.gguf")[0].closed.Load() {
		t.Fatal("runner unloaded while a request used it")
	}
	l.Release()
}

func TestMaxLoadedEvictsLRU(t *testing.T) {
	fs := &fakeStarter{}
	s := newSched(t, fs, Options{MaxLoaded: 2, KeepAlive: dur(-1)})
	get(t, s, spec("a")).Release()
	time.Sleep(2 * time.Millisecond)
	get(t, s, spec("b")).Release()
	time.Sleep(2 * time.Millisecond)
	get(t, s, spec("a")).Release() // a is now the most recently used
	get(t, s, spec("c")).Release()
	if !fs.started("/models/b.gguf")[0].closed.Load() {
		t.Fatal("least recently used model b was not evicted")
	}
	if fs.started("/models/a.gguf")[0].closed.Load() {
		t.Fatal("recently used model a was evicted")
	}
	names := []string{}
	for _, st := range s.List() {
		names = append(names, st.Name)
	}
	if fmt.Sprint(names) != "[a c]" {
		t.Fatalf("loaded = %v, want [a c]", names)
	}
}

func TestMaxLoadedWaitsWhenAllBusy(t *testing.T) {
	fs := &fakeStarter{}
	s := newSched(t, fs, Options{MaxLoaded: 1})
	la := get(t, s, spec("a"))
	got := make(chan *Lease, 1)
	go func() {
		l, err := s.Get(context.Background(), spec("b"))
		if err != nil {
			t.Error(err)
		}
		got <- l
	}()
	select {
	case <-got:
		t.Fatal("b loaded while a was busy and MaxLoaded is 1")
	case <-time.After(50 * time.Millisecond):
	}
	if len(fs.started("/models/b.gguf")) != 0 {
		t.Fatal("b started beyond MaxLoaded")
	}
	la.Release()
	select {
	case lb := <-got:
		if !fs.started("/models/a.gguf")[0].closed.Load() {
			t.Fatal("a not unloaded before b was loaded")
		}
		lb.Release()
	case <-time.After(2 * time.Second):
		t.Fatal("b never loaded after a became idle")
	}
}

func TestQueueFull(t *testing.T) {
	fs := &fakeStarter{}
	s := newSched(t, fs, Options{MaxQueue: 2})
	l := get(t, s, spec("a"))
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var wg sync.WaitGroup
	for i := 0; i < 2; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if l, err := s.Get(ctx, spec("a")); err == nil {
				l.Release()
			}
		}()
	}
	eventually(t, "two requests queued", func() bool {
		s.mu.Lock()
		defer s.mu.Unlock()
		return s.waiting[keyOf(withParallel(spec("a"), 1))] == 2
	})
	_, err := s.Get(ctx, spec("a"))
	if !errors.Is(err, ErrQueueFull) {
		t.Fatalf("third waiting request: err = %v, want ErrQueueFull", err)
	}
	// Another model has a queue of its own.
	lb := get(t, s, spec("b"))
	lb.Release()
	cancel() // the queued requests give up
	wg.Wait()
	s.mu.Lock()
	n := len(s.waiting)
	s.mu.Unlock()
	if n != 0 {
		t.Fatalf("waiting counts left after cancellation: %d", n)
	}
	l.Release()
}

func withParallel(sp Spec, n int) Spec { sp.Load.Parallel = n; return sp }

func TestCancelWhileWaiting(t *testing.T) {
	fs := &fakeStarter{}
	s := newSched(t, fs, Options{})
	l := get(t, s, spec("a"))
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Millisecond)
	defer cancel()
	if _, err := s.Get(ctx, spec("a")); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("err = %v, want deadline exceeded", err)
	}
	l.Release()
	get(t, s, spec("a")).Release() // the slot is free again
}

func TestCrashFailsOnlyThatRunnerAndRestarts(t *testing.T) {
	fs := &fakeStarter{}
	s := newSched(t, fs, Options{NumParallel: 2})
	la := get(t, s, spec("a"))
	lb := get(t, s, spec("b"))
	ra := fs.started("/models/a.gguf")[0]
	ra.crash()
	eventually(t, "crashed runner forgotten", func() bool { return len(s.List()) == 1 })
	if !errors.Is(la.Runner().Err(), runner.ErrRunnerExited) {
		t.Fatalf("crashed runner Err = %v", la.Runner().Err())
	}
	la.Release() // the failed request ends; must not disturb anything
	if lb.Runner().Err() != nil {
		t.Fatal("the other model's runner was affected")
	}
	la2 := get(t, s, spec("a"))
	if la2.Runner() == ra {
		t.Fatal("got the crashed runner again")
	}
	if n := len(fs.started("/models/a.gguf")); n != 2 {
		t.Fatalf("runner for a started %d times, want 2 (restart after crash)", n)
	}
	la2.Release()
	lb.Release()
}

func TestStartFailure(t *testing.T) {
	bad := fmt.Errorf("%w: gguf_init_from_file: invalid magic", runner.ErrRunnerExited)
	fs := &fakeStarter{fail: map[string]error{"/models/bad.gguf": bad}, delay: 20 * time.Millisecond}
	s := newSched(t, fs, Options{NumParallel: 2})
	var wg sync.WaitGroup
	errs := make([]error, 3)
	for i := range errs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, errs[i] = s.Get(context.Background(), spec("bad"))
		}()
	}
	wg.Wait()
	for i, err := range errs {
		if !errors.Is(err, runner.ErrRunnerExited) {
			t.Fatalf("request %d: err = %v, want the start error", i, err)
		}
	}
	if len(s.List()) != 0 {
		t.Fatal("failed model listed as loaded")
	}
	fs.mu.Lock()
	delete(fs.fail, "/models/bad.gguf")
	fs.mu.Unlock()
	get(t, s, spec("bad")).Release() // retried on the next request
}

func TestUnload(t *testing.T) {
	fs := &fakeStarter{}
	s := newSched(t, fs, Options{})
	if err := s.Unload(context.Background(), "a"); !errors.Is(err, ErrNotLoaded) {
		t.Fatalf("Unload of nothing: %v, want ErrNotLoaded", err)
	}
	get(t, s, spec("a")).Release()
	if err := s.Unload(context.Background(), "a"); err != nil {
		t.Fatal(err)
	}
	eventually(t, "idle model unloaded", fs.started("/models/a.gguf")[0].closed.Load)

	l := get(t, s, spec("b"))
	if err := s.Unload(context.Background(), "b"); err != nil {
		t.Fatal(err)
	}
	rb := fs.started("/models/b.gguf")[0]
	time.Sleep(20 * time.Millisecond)
	if rb.closed.Load() {
		t.Fatal("busy model unloaded before its request finished")
	}
	l.Release()
	eventually(t, "busy model unloaded after release", rb.closed.Load)
	get(t, s, spec("b")).Release()
	if n := len(fs.started("/models/b.gguf")); n != 2 {
		t.Fatalf("b started %d times, want 2", n)
	}
}

func TestDifferentLoadOptionsAreDifferentRunners(t *testing.T) {
	fs := &fakeStarter{}
	s := newSched(t, fs, Options{})
	a := spec("a")
	get(t, s, a).Release()
	a.Load.NumCtx = 8192
	get(t, s, a).Release()
	if n := len(fs.started("/models/a.gguf")); n != 2 {
		t.Fatalf("started %d runners, want 2 (num_ctx differs)", n)
	}
}

func TestClose(t *testing.T) {
	fs := &fakeStarter{}
	s := New(Options{Start: fs.start})
	l := get(t, s, spec("a"))
	s.Close()
	if !fs.started("/models/a.gguf")[0].closed.Load() {
		t.Fatal("Close left a runner running")
	}
	l.Release()
	if _, err := s.Get(context.Background(), spec("a")); !errors.Is(err, ErrClosed) {
		t.Fatalf("Get after Close: %v", err)
	}
}

func TestNoModel(t *testing.T) {
	s := newSched(t, &fakeStarter{}, Options{})
	if _, err := s.Get(context.Background(), Spec{Name: "x"}); !errors.Is(err, ErrNoModel) {
		t.Fatalf("err = %v", err)
	}
}

func TestMemoryLimitEvicts(t *testing.T) {
	fs := &fakeStarter{}
	s := newSched(t, fs, Options{MemoryLimit: 250, KeepAlive: dur(-1)})
	sized := func(name string, size int64) Spec { sp := spec(name); sp.Size = size; return sp }
	get(t, s, sized("a", 100)).Release()
	time.Sleep(2 * time.Millisecond)
	get(t, s, sized("b", 100)).Release()
	if len(s.List()) != 2 {
		t.Fatal("two models that fit were not both kept")
	}
	// c needs 100 more: a (least recently used) must go.
	lc := get(t, s, sized("c", 100))
	if !fs.started("/models/a.gguf")[0].closed.Load() || fs.started("/models/b.gguf")[0].closed.Load() {
		t.Fatal("memory limit did not evict the least recently used model")
	}
	// d needs 200: b is idle and goes; c is busy, so d waits for it.
	got := make(chan *Lease, 1)
	go func() {
		l, err := s.Get(context.Background(), sized("d", 200))
		if err != nil {
			t.Error(err)
		}
		got <- l
	}()
	select {
	case <-got:
		t.Fatal("d loaded over the memory limit while c was busy")
	case <-time.After(50 * time.Millisecond):
	}
	lc.Release()
	select {
	case l := <-got:
		l.Release()
	case <-time.After(2 * time.Second):
		t.Fatal("d never loaded")
	}
	// A model bigger than the limit still loads when it is alone.
	get(t, s, sized("huge", 1000)).Release()
}

func TestSystemMemory(t *testing.T) {
	total, avail, err := SystemMemory()
	if err != nil {
		if runtime.GOOS == "linux" { // memory_linux.go reads /proc/meminfo, which Linux always has
			t.Fatal(err)
		}
		t.Skip(err)
	}
	if total <= 0 || avail < 0 || avail > total {
		t.Fatalf("total %d available %d", total, avail)
	}
}

func TestUnloadWhileStarting(t *testing.T) {
	fs := &fakeStarter{delay: 50 * time.Millisecond}
	s := newSched(t, fs, Options{KeepAlive: dur(-1)})
	got := make(chan *Lease, 1)
	go func() {
		l, err := s.Get(context.Background(), spec("a"))
		if err != nil {
			t.Error(err)
		}
		got <- l
	}()
	eventually(t, "start under way", func() bool {
		s.mu.Lock()
		defer s.mu.Unlock()
		return len(s.models) == 1
	})
	if err := s.Unload(context.Background(), "a"); err != nil {
		t.Fatalf("Unload while starting: %v", err)
	}
	l := <-got // the request that started it is still served
	r := fs.started("/models/a.gguf")[0]
	if r.closed.Load() {
		t.Fatal("runner closed under its request")
	}
	l.Release()
	eventually(t, "unloaded after the request", r.closed.Load)
}

func TestCloseWhileStarting(t *testing.T) {
	fs := &fakeStarter{delay: 50 * time.Millisecond}
	s := New(Options{Start: fs.start})
	done := make(chan struct{})
	go func() {
		defer close(done)
		if l, err := s.Get(context.Background(), spec("a")); err == nil {
			l.Release()
		}
	}()
	time.Sleep(10 * time.Millisecond)
	s.Close()
	<-done
	eventually(t, "runner started after Close is stopped", func() bool {
		rs := fs.started("/models/a.gguf")
		return len(rs) == 1 && rs[0].closed.Load()
	})
}
