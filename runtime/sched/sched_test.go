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
	load   runner.LoadOptions
	model  string
	fs     *fakeStarter
	done   chan struct{}
	once   sync.Once
	closed atomic.Bool
	err    error
}

func (f *fakeRunner) Client() *runner.Client { return nil }
func (f *fakeRunner) Info() *runner.Info {
	ctx := f.load.NumCtx
	if ctx == 0 {
		ctx = 2048
	}
	return &runner.Info{ModelPath: f.model, Size: 1000, Context: ctx}
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
	if c := f.fs.closing; c != nil {
		c <- f.load
	}
	if g := f.fs.closeGate; g != nil {
		<-g
	}
	f.closed.Store(true)
	f.exit(fmt.Errorf("%w: the runner was stopped", runner.ErrRunnerExited))
	return nil
}

// crash makes the fake exit on its own.
func (f *fakeRunner) crash() {
	f.exit(fmt.Errorf("%w: segfault", runner.ErrRunnerExited))
}

func (f *fakeRunner) exit(err error) {
	f.once.Do(func() {
		f.err = err
		f.fs.event("exit", f.load)
		close(f.done)
	})
}

// fakeStarter records the runners it starts.
type fakeStarter struct {
	mu      sync.Mutex
	runners []*fakeRunner
	fail    map[string]error // model path → start error
	delay   time.Duration
	// gate, when set, holds every start until it receives a value or its
	// ctx ends; starting is sent a value as each start begins.
	gate     chan struct{}
	starting chan runner.LoadOptions
	// closeGate, when set, holds every Close until it is closed; closing
	// is sent a value as each Close begins.
	closeGate chan struct{}
	closing   chan runner.LoadOptions
	// events is the order of starts and exits: "start /models/a.gguf
	// ctx=8192", "exit …", "cancelled …".
	events []string
}

func (fs *fakeStarter) event(what string, load runner.LoadOptions) {
	fs.mu.Lock()
	defer fs.mu.Unlock()
	fs.events = append(fs.events, fmt.Sprintf("%s %s ctx=%d", what, load.Model, load.NumCtx))
}

func (fs *fakeStarter) eventLog() []string {
	fs.mu.Lock()
	defer fs.mu.Unlock()
	return append([]string(nil), fs.events...)
}

func (fs *fakeStarter) start(ctx context.Context, load runner.LoadOptions) (Runner, error) {
	if fs.delay > 0 {
		time.Sleep(fs.delay)
	}
	if fs.starting != nil {
		fs.starting <- load
	}
	if fs.gate != nil {
		select {
		case <-fs.gate:
		case <-ctx.Done():
			fs.event("cancelled", load)
			return nil, context.Cause(ctx)
		}
	}
	fs.mu.Lock()
	if err := fs.fail[load.Model]; err != nil {
		fs.mu.Unlock()
		return nil, err
	}
	r := &fakeRunner{load: load, model: load.Model, fs: fs, done: make(chan struct{})}
	fs.runners = append(fs.runners, r)
	fs.mu.Unlock()
	fs.event("start", load)
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
		return len(s.queue["a"]) == 2
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
	n := len(s.queue)
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

// withCtx is sp with num_ctx n: another spec of the same model.
func withCtx(sp Spec, n int) Spec { sp.Load.NumCtx = n; return sp }

// getAsync starts a Get in the background; its lease (or nil after an
// error, which is reported) arrives on the channel.
func getAsync(t *testing.T, s *Scheduler, ctx context.Context, sp Spec) <-chan *Lease {
	ch := make(chan *Lease, 1)
	go func() {
		l, err := s.Get(ctx, sp)
		if err != nil && ctx.Err() == nil {
			t.Errorf("Get(%s ctx=%d): %v", sp.Name, sp.Load.NumCtx, err)
		}
		ch <- l
	}()
	return ch
}

// queued waits until n requests wait for model name.
func queued(t *testing.T, s *Scheduler, name string, n int) {
	t.Helper()
	eventually(t, fmt.Sprintf("%d requests queued for %s", n, name), func() bool {
		s.mu.Lock()
		defer s.mu.Unlock()
		return len(s.queue[name]) == n
	})
}

// recv waits for a value on ch.
func recv[T any](t *testing.T, ch <-chan T, what string) T {
	t.Helper()
	select {
	case v := <-ch:
		return v
	case <-time.After(5 * time.Second):
		t.Fatalf("timed out waiting for %s", what)
	}
	var zero T
	return zero
}

// receive waits for a lease.
func receive(t *testing.T, ch <-chan *Lease) *Lease {
	t.Helper()
	select {
	case l := <-ch:
		if l == nil {
			t.Fatal("Get failed")
		}
		return l
	case <-time.After(5 * time.Second):
		t.Fatal("timed out waiting for a lease")
	}
	return nil
}

// pending fails if ch already has a lease: the request must still wait.
func pending(t *testing.T, ch <-chan *Lease, what string) {
	t.Helper()
	select {
	case <-ch:
		t.Fatalf("%s was served, want it to wait", what)
	default:
	}
}

// TestReloadReplacesIdleRunner: a request with another num_ctx stops the
// model's idle runner and starts one with the new options after the old one
// has exited; /api/ps (List) shows the model once, with the new context.
func TestReloadReplacesIdleRunner(t *testing.T) {
	for _, maxLoaded := range []int{1, 3} {
		t.Run(fmt.Sprint("MaxLoaded=", maxLoaded), func(t *testing.T) {
			fs := &fakeStarter{}
			s := newSched(t, fs, Options{MaxLoaded: maxLoaded, KeepAlive: dur(-1)})
			get(t, s, spec("a")).Release()
			get(t, s, spec("b")).Release()
			l := get(t, s, withCtx(spec("a"), 8192))
			if l.Info().Context != 8192 {
				t.Fatalf("leased runner has context %d, want 8192", l.Info().Context)
			}
			l.Release()
			var ctxA []int
			for _, st := range s.List() {
				if st.Name == "a" {
					ctxA = append(ctxA, st.Context)
				}
			}
			if fmt.Sprint(ctxA) != "[8192]" {
				t.Fatalf("List shows a with contexts %v, want once with 8192", ctxA)
			}
			var want []string
			if maxLoaded == 1 {
				want = []string{"start /models/a.gguf ctx=0", "exit /models/a.gguf ctx=0", "start /models/b.gguf ctx=0",
					"exit /models/b.gguf ctx=0", "start /models/a.gguf ctx=8192"}
			} else {
				want = []string{"start /models/a.gguf ctx=0", "start /models/b.gguf ctx=0", "exit /models/a.gguf ctx=0",
					"start /models/a.gguf ctx=8192"}
			}
			if got := fs.eventLog(); fmt.Sprint(got) != fmt.Sprint(want) {
				t.Fatalf("events:\n%q\nwant\n%q", got, want)
			}
		})
	}
}

// TestReloadWaitsForRequestsInFlight: the old runner serves its requests to
// the end; the new spec waits for them, and a request for the old spec that
// arrives after it waits its turn (arrival order), which reloads again.
func TestReloadWaitsForRequestsInFlight(t *testing.T) {
	fs := &fakeStarter{}
	s := newSched(t, fs, Options{NumParallel: 2, MaxQueue: 2})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	l1 := get(t, s, spec("a"))
	ch2 := getAsync(t, s, ctx, withCtx(spec("a"), 8192))
	queued(t, s, "a", 1)
	ch3 := getAsync(t, s, ctx, spec("a")) // old spec, free slot, but later
	queued(t, s, "a", 2)
	// The queue bound counts every spec of the model.
	if _, err := s.Get(ctx, withCtx(spec("a"), 1024)); !errors.Is(err, ErrQueueFull) {
		t.Fatalf("third waiting request: %v, want ErrQueueFull", err)
	}
	pending(t, ch2, "the new spec while the old runner has a request")
	pending(t, ch3, "a request behind a reload")
	old := fs.started("/models/a.gguf")[0]
	if old.closed.Load() || len(fs.started("/models/a.gguf")) != 1 {
		t.Fatal("the runner was stopped, or a second one started, while a request used it")
	}
	l1.Release()
	l2 := receive(t, ch2)
	if !old.closed.Load() || l2.Info().Context != 8192 {
		t.Fatalf("after the reload: old runner closed %v, new context %d", old.closed.Load(), l2.Info().Context)
	}
	pending(t, ch3, "the old spec while the new runner has a request")
	l2.Release()
	l3 := receive(t, ch3)
	l3.Release()
	want := []string{"start /models/a.gguf ctx=0", "exit /models/a.gguf ctx=0", "start /models/a.gguf ctx=8192",
		"exit /models/a.gguf ctx=8192", "start /models/a.gguf ctx=0"}
	if got := fs.eventLog(); fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("events:\n%q\nwant\n%q", got, want)
	}
	if st := s.List(); len(st) != 1 || st[0].Context != 2048 {
		t.Fatalf("List = %+v", st)
	}
}

// TestAlternatingSpecsServedInArrivalOrder: requests that alternate between
// two specs are served in the order they came, one reload between each;
// consecutive requests for one spec share its runner.
func TestAlternatingSpecsServedInArrivalOrder(t *testing.T) {
	fs := &fakeStarter{}
	s := newSched(t, fs, Options{NumParallel: 2})
	ctx := context.Background()
	l0 := get(t, s, spec("a"))
	specs := []Spec{withCtx(spec("a"), 8192), spec("a"), spec("a"), withCtx(spec("a"), 8192), spec("a")}
	var chs []<-chan *Lease
	for i, sp := range specs {
		chs = append(chs, getAsync(t, s, ctx, sp))
		queued(t, s, "a", i+1)
	}
	l0.Release()
	// 8192 alone; then the two default ones together; then 8192; then the last.
	for _, group := range [][]int{{0}, {1, 2}, {3}, {4}} {
		var ls []*Lease
		for _, i := range group {
			l := receive(t, chs[i])
			want := specs[i].Load.NumCtx
			if want == 0 {
				want = 2048
			}
			if l.Info().Context != want {
				t.Fatalf("request %d got context %d", i, l.Info().Context)
			}
			ls = append(ls, l)
		}
		for _, j := range []int{0, 1, 2, 3, 4} {
			if j > group[len(group)-1] {
				pending(t, chs[j], fmt.Sprintf("request %d (arrival order)", j))
			}
		}
		if len(ls) == 2 && ls[0].Runner() != ls[1].Runner() {
			t.Fatal("consecutive requests for one spec got different runners")
		}
		for _, l := range ls {
			l.Release()
		}
	}
	if n := len(fs.started("/models/a.gguf")); n != 5 {
		t.Fatalf("%d starts, want 5 (the first, then one per change of spec)", n)
	}
}

// TestReloadWaitsForTheOldRunnerToExit: the new runner is not started while
// the old one is still stopping, even when MaxLoaded would allow both.
func TestReloadWaitsForTheOldRunnerToExit(t *testing.T) {
	fs := &fakeStarter{closeGate: make(chan struct{}), closing: make(chan runner.LoadOptions, 4), starting: make(chan runner.LoadOptions, 4)}
	var open sync.Once
	release := func() { open.Do(func() { close(fs.closeGate) }) }
	s := newSched(t, fs, Options{MaxLoaded: 3})
	t.Cleanup(release) // before the scheduler's Close (cleanups run last first)
	get(t, s, spec("a")).Release()
	recv(t, fs.starting, "the first start")
	ch := getAsync(t, s, context.Background(), withCtx(spec("a"), 8192))
	recv(t, fs.closing, "the old runner's Close") // it is being stopped; its Close is held
	queued(t, s, "a", 1)
	select {
	case l := <-fs.starting:
		t.Fatalf("runner with ctx=%d started while the old one was still stopping", l.NumCtx)
	default:
	}
	release()
	if l := recv(t, fs.starting, "the new start"); l.NumCtx != 8192 {
		t.Fatalf("started ctx=%d", l.NumCtx)
	}
	receive(t, ch).Release()
}

// TestCrashWhileDraining: a runner that crashes while it drains for a
// reload is replaced at once; its request fails alone.
func TestCrashWhileDraining(t *testing.T) {
	fs := &fakeStarter{}
	s := newSched(t, fs, Options{})
	l1 := get(t, s, spec("a"))
	ch := getAsync(t, s, context.Background(), withCtx(spec("a"), 8192))
	queued(t, s, "a", 1)
	fs.started("/models/a.gguf")[0].crash()
	l2 := receive(t, ch)
	if l2.Info().Context != 8192 {
		t.Fatalf("context %d", l2.Info().Context)
	}
	l1.Release() // the crashed runner's request ends; nothing else changes
	if l2.Runner().Err() != nil || len(s.List()) != 1 {
		t.Fatalf("after the crashed request ended: %v, %+v", l2.Runner().Err(), s.List())
	}
	l2.Release()
}

// TestCancelAbandonsStart: when the only request waiting for a start gives
// up, the start is cancelled (the runner process is stopped) and nothing
// stays loaded; when another request still waits for it, it goes on.
func TestCancelAbandonsStart(t *testing.T) {
	fs := &fakeStarter{gate: make(chan struct{}), starting: make(chan runner.LoadOptions, 4)}
	s := newSched(t, fs, Options{KeepAlive: dur(-1)})

	ctx, cancel := context.WithCancel(context.Background())
	ch := getAsync(t, s, ctx, spec("a"))
	recv(t, fs.starting, "the start")
	cancel()
	if l := recv(t, ch, "the cancelled Get"); l != nil {
		t.Fatal("a cancelled Get returned a lease")
	}
	eventually(t, "the start's ctx cancelled and the scheduler empty", func() bool {
		s.mu.Lock()
		defer s.mu.Unlock()
		return len(s.models) == 0 && s.closing == 0 && len(s.stopping) == 0 && len(s.queue) == 0
	})
	if got := fs.eventLog(); fmt.Sprint(got) != "[cancelled /models/a.gguf ctx=0]" {
		t.Fatalf("events %q, want the start cancelled", got)
	}

	// Two requests wait for one start; the first gives up, the start goes on.
	ctx1, cancel1 := context.WithCancel(context.Background())
	ch1 := getAsync(t, s, ctx1, spec("a"))
	recv(t, fs.starting, "the second start")
	ch2 := getAsync(t, s, context.Background(), spec("a"))
	queued(t, s, "a", 1) // the one slot is the first request's
	cancel1()
	if l := recv(t, ch1, "the cancelled Get"); l != nil {
		t.Fatal("a cancelled Get returned a lease")
	}
	s.mu.Lock()
	l := s.models["a"]
	abandoned := l == nil || l.abandoned
	s.mu.Unlock()
	if abandoned {
		t.Fatal("the start was abandoned while another request waited for it")
	}
	close(fs.gate)
	receive(t, ch2).Release()
	if st := s.List(); len(st) != 1 {
		t.Fatalf("List = %+v", st)
	}
}

// TestCancelQueuedAbandonsStart: the request that started a runner gives
// up while another waits for it (the start goes on); when the waiting one
// gives up too, the start is cancelled.
func TestCancelQueuedAbandonsStart(t *testing.T) {
	fs := &fakeStarter{gate: make(chan struct{}), starting: make(chan runner.LoadOptions, 4)}
	s := newSched(t, fs, Options{KeepAlive: dur(-1)})
	ctx1, cancel1 := context.WithCancel(context.Background())
	ch1 := getAsync(t, s, ctx1, spec("a"))
	recv(t, fs.starting, "the start")
	ctx2, cancel2 := context.WithCancel(context.Background())
	ch2 := getAsync(t, s, ctx2, spec("a"))
	queued(t, s, "a", 1)
	cancel1()
	recv(t, ch1, "the first Get")
	// The second request now holds the slot (it took it when the first
	// left) or still waits; either way the start must go on.
	s.mu.Lock()
	l := s.models["a"]
	abandoned := l == nil || l.abandoned
	s.mu.Unlock()
	if abandoned {
		t.Fatal("the start was abandoned while another request waited for it")
	}
	cancel2()
	if l := recv(t, ch2, "the second Get"); l != nil {
		t.Fatal("a cancelled Get returned a lease")
	}
	eventually(t, "the start cancelled and the scheduler empty", func() bool {
		s.mu.Lock()
		defer s.mu.Unlock()
		return len(s.models) == 0 && s.closing == 0 && len(s.queue) == 0
	})
	if got := fs.eventLog(); fmt.Sprint(got) != "[cancelled /models/a.gguf ctx=0]" {
		t.Fatalf("events %q, want the start cancelled", got)
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
