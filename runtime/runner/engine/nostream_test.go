package engine_test

import (
	"context"
	"encoding/json"
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/olmhq/olm/internal/testmodel"
	"github.com/olmhq/olm/runtime/runner"
)

// completeEvents runs a completion and returns every event it got.
func completeEvents(t *testing.T, c *runner.Client, req runner.CompletionRequest) []runner.CompletionEvent {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	var evs []runner.CompletionEvent
	last, err := c.Completion(ctx, req, func(ev runner.CompletionEvent) error { evs = append(evs, ev); return nil })
	if err != nil {
		t.Fatalf("completion: %v", err)
	}
	if len(evs) == 0 || !reflect.DeepEqual(*last, evs[len(evs)-1]) {
		t.Fatalf("returned final event %+v is not the last one passed to fn", last)
	}
	return evs
}

// TestNoStream checks that a request with NoStream gets exactly one event,
// the final one, carrying what the streamed pieces add up to, with the
// same done reason, counts and context.
func TestNoStream(t *testing.T) {
	for name, path := range models(t) {
		t.Run(name, func(t *testing.T) {
			p := start(t, runner.LoadOptions{Model: path, NumCtx: 512})
			c := p.Client()
			full, _ := complete(t, c, runner.CompletionRequest{Prompt: "Once upon a time", Options: greedy(40)})
			if len(full) < 20 {
				t.Fatalf("generated text too short to test: %q", full)
			}
			stop := greedy(40)
			stop.Stop = []string{"never-generated-xyz", full[len(full)/2 : len(full)/2+4]}
			for _, o := range []*runner.Sampling{greedy(40), greedy(7), stop} {
				req := runner.CompletionRequest{Prompt: "Once upon a time", Options: o}
				streamed := completeEvents(t, c, req)
				req.NoStream = true
				one := completeEvents(t, c, req)
				if len(one) != 1 || !one[0].Done {
					t.Fatalf("stop %q: no_stream gave %d events: %+v", o.Stop, len(one), one)
				}
				var text strings.Builder
				for _, ev := range streamed {
					text.WriteString(ev.Content)
				}
				got, want := one[0], streamed[len(streamed)-1]
				if got.Content != text.String() {
					t.Fatalf("stop %q: no_stream text %q, streamed %q", o.Stop, got.Content, text.String())
				}
				if len(streamed) < 2 { // pieces (several tokens each when they come fast) and the final event
					t.Fatalf("stop %q: only %d streamed events for %q", o.Stop, len(streamed), text.String())
				}
				if got.DoneReason != want.DoneReason || got.EvalCount != want.EvalCount || got.Truncated != want.Truncated ||
					got.PromptEvalCount+got.PromptCached != want.PromptEvalCount+want.PromptCached ||
					!reflect.DeepEqual(got.Context, want.Context) {
					t.Fatalf("stop %q: no_stream final %+v, streamed final %+v", o.Stop, got, want)
				}
				if got.EvalDuration <= 0 {
					t.Fatalf("no_stream: durations not measured: %+v", got.Timings)
				}
				if o == stop && got.DoneReason != runner.DoneStop {
					t.Fatalf("stop string: done_reason %q", got.DoneReason)
				}
			}
		})
	}
}

// chatEvents runs a chat and returns every event it got.
func chatEvents(t *testing.T, c *runner.Client, req runner.ChatRequest) []runner.ChatEvent {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	var evs []runner.ChatEvent
	if _, err := c.Chat(ctx, req, func(ev runner.ChatEvent) error { evs = append(evs, ev); return nil }); err != nil {
		t.Fatalf("chat: %v", err)
	}
	return evs
}

// TestChatNoStream checks chat with NoStream against streaming: plain
// content, thinking parsed by a real template, a tool-call grammar, and a
// format.
func TestChatNoStream(t *testing.T) {
	msgs := []runner.Message{{Role: "user", Content: "Weather in Paris?"}}
	on := true
	weather := json.RawMessage(`[{"type":"function","function":{"name":"get_weather","description":"Get the weather",` +
		`"parameters":{"type":"object","properties":{"city":{"type":"string"}},"required":["city"]}}}]`)
	cases := []struct {
		name  string
		model func(t *testing.T) string
		req   runner.ChatRequest
	}{
		{"plain", func(t *testing.T) string { return smallModel(t) }, runner.ChatRequest{Messages: msgs, Options: greedy(24)}},
		{"thinking", func(t *testing.T) string { return templateModel(t, "Qwen-Qwen3-0.6B.jinja") },
			runner.ChatRequest{Messages: msgs, Think: &on, Options: greedy(24)}},
		{"tools", func(t *testing.T) string { return templateModel(t, "Qwen-Qwen2.5-7B-Instruct.jinja") },
			runner.ChatRequest{Messages: msgs, Tools: weather, ToolChoice: "required", Options: greedy(48)}},
		{"format", func(t *testing.T) string { return smallModel(t) },
			runner.ChatRequest{Messages: msgs, Format: json.RawMessage(`"json"`), Options: greedy(24)}},
		{"pre-rendered", func(t *testing.T) string { return testmodel.Tiny(t) },
			runner.ChatRequest{Prompt: "Hello there", Options: greedy(24)}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			p := start(t, runner.LoadOptions{Model: tc.model(t), NumCtx: 1024})
			streamed := chatEvents(t, p.Client(), tc.req)
			req := tc.req
			req.NoStream = true
			one := chatEvents(t, p.Client(), req)
			if len(one) != 1 || !one[0].Done {
				t.Fatalf("no_stream gave %d events: %+v", len(one), one)
			}
			var content, thinking strings.Builder
			for _, ev := range streamed {
				content.WriteString(ev.Content)
				thinking.WriteString(ev.Thinking)
			}
			got, want := one[0], streamed[len(streamed)-1]
			if got.Content != content.String() || got.Thinking != thinking.String() {
				t.Fatalf("no_stream content %q thinking %q; streamed %q, %q", got.Content, got.Thinking, content.String(), thinking.String())
			}
			if !reflect.DeepEqual(got.Message, want.Message) {
				t.Fatalf("no_stream message %+v, streamed %+v", got.Message, want.Message)
			}
			if got.DoneReason != want.DoneReason || got.EvalCount != want.EvalCount || got.Truncated != want.Truncated {
				t.Fatalf("no_stream final %+v, streamed final %+v", got, want)
			}
			if got.Content == "" && got.Thinking == "" && len(got.Message.ToolCalls) == 0 {
				t.Fatalf("empty answer: %+v", got)
			}
			t.Logf("%d streamed events; message %+v", len(streamed), got.Message)
		})
	}
}

// TestNoStreamCancel: a client that goes away during a request that does
// not stream (the runner writes nothing until the end, so only the closed
// connection tells it) gets context.Canceled, and the runner goes on
// serving. As in TestCancelFreesSlot, had the slot not been freed the next
// request would wait for the cancelled one's 4096 tokens (logged).
func TestNoStreamCancel(t *testing.T) {
	p := start(t, runner.LoadOptions{Model: smallModel(t), NumCtx: 4096, Parallel: 1})
	c := p.Client()
	ctx, cancel := context.WithCancel(context.Background())
	stop := time.AfterFunc(50*time.Millisecond, cancel) // any time before the 4096 tokens are done
	defer stop.Stop()
	_, err := c.Completion(ctx, runner.CompletionRequest{Prompt: "Tell me a long story", Options: greedy(-1), NoStream: true}, nil)
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v, want context.Canceled", err)
	}
	t0 := time.Now()
	text, last := complete(t, c, runner.CompletionRequest{Prompt: "Hi", Options: greedy(4)})
	if text == "" || last.EvalCount != 4 {
		t.Fatalf("request after cancel: %q %+v", text, last)
	}
	t.Logf("next request served %v after cancel", time.Since(t0))
}
