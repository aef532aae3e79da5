package main

import (
	"bytes"
	"context"
	"image"
	"image/png"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestREPLLoadAndSave: /load switches the chat to another model (a fresh
// conversation, after loading it; an unknown model changes nothing), /save
// creates a model from the session as Ollama does.
func TestREPLLoadAndSave(t *testing.T) {
	s, f, out, errw := newTestSession(t)
	input := strings.Join([]string{
		"/set system You are a pirate.",
		"/set parameter temperature 0.2",
		"hello",
		"/save pirate",
		"/load missing",
		"/load other",
		"again",
		"/load",
		"/bye",
	}, "\n")
	if err := s.repl(context.Background(), strings.NewReader(input)); err != nil {
		t.Fatal(err)
	}
	if len(f.creates) != 1 {
		t.Fatalf("creates = %+v", f.creates)
	}
	c := f.creates[0]
	if c.Model != "pirate" || c.From != "m" || c.System != "You are a pirate." || c.Parameters["temperature"] != 0.2 ||
		len(c.Messages) != 2 || c.Messages[0].Content != "hello" || c.Messages[1].Content != "answer 1" {
		t.Errorf("/save request = %+v", c)
	}
	if len(f.gens) != 2 || f.gens[1].Model != "other" || f.gens[1].Prompt != "" {
		t.Errorf("/load must load the model: %+v", f.gens)
	}
	if len(f.chats) != 2 {
		t.Fatalf("chats = %d", len(f.chats))
	}
	c2 := f.chats[1]
	if c2.Model != "other" || len(c2.Messages) != 2 || c2.Messages[0].Content != "You are a pirate." || c2.Messages[1].Content != "again" {
		t.Errorf("chat after /load = %+v (want model other, the system message and a fresh conversation)", c2)
	}
	if o := c2.Options; o == nil || o.Temperature == nil || *o.Temperature != 0.2 {
		t.Errorf("session parameters lost by /load: %+v", o)
	}
	for _, want := range []string{"Created new model 'pirate'", "Loading model 'other'"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("stdout lacks %q:\n%s", want, out)
		}
	}
	for _, want := range []string{"couldn't find model 'missing'", "usage: /load MODEL"} {
		if !strings.Contains(errw.String(), want) {
			t.Errorf("stderr lacks %q:\n%s", want, errw)
		}
	}
}

// TestREPLSetCommands: a multi-line /set system """, /set think and
// nothink, and /set parameter stop with several words (Ollama's meaning:
// each word a stop string, replacing the earlier ones).
func TestREPLSetCommands(t *testing.T) {
	s, f, out, _ := newTestSession(t)
	input := strings.Join([]string{
		`/set system """You are`,
		`a pirate."""`,
		"/set think",
		"/set parameter stop <a> <b>",
		"one",
		"/set nothink",
		"/set parameter stop <c>",
		`/set system """single"""`,
		"two",
		"/bye",
	}, "\n")
	if err := s.repl(context.Background(), strings.NewReader(input)); err != nil {
		t.Fatal(err)
	}
	if len(f.chats) != 2 {
		t.Fatalf("chats = %d", len(f.chats))
	}
	c1, c2 := f.chats[0], f.chats[1]
	if c1.Messages[0].Role != "system" || c1.Messages[0].Content != "You are\na pirate." {
		t.Errorf("multi-line system message = %+v", c1.Messages[0])
	}
	if c1.Think == nil || c1.Think.Value != true || c2.Think == nil || c2.Think.Value != false {
		t.Errorf("think: %+v then %+v", c1.Think, c2.Think)
	}
	if c1.Options == nil || strings.Join(c1.Options.Stop, "|") != "<a>|<b>" || strings.Join(c2.Options.Stop, "|") != "<c>" {
		t.Errorf("stop strings: %+v then %+v", c1.Options, c2.Options)
	}
	if c2.Messages[0].Content != "single" {
		t.Errorf("one-line \"\"\" system message = %q", c2.Messages[0].Content)
	}
	if !strings.Contains(out.String(), "Set parameter 'stop' to '<a>, <b>'") || strings.Count(out.String(), "Set system message.") != 2 {
		t.Errorf("stdout:\n%s", out)
	}
}

// TestREPLImages: for a model that takes images, paths of image files in
// a message (or starting it) are sent as images and taken out of the text,
// as Ollama does; a file that is not an image is an error, and a path that
// does not exist stays text.
func TestREPLImages(t *testing.T) {
	dir := t.TempDir()
	pic := filepath.Join(dir, "my pic.png")
	var b bytes.Buffer
	if err := png.Encode(&b, image.NewGray(image.Rect(0, 0, 2, 2))); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(pic, b.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	notImage := filepath.Join(dir, "notes.png")
	os.WriteFile(notImage, []byte("just text, not a picture"), 0o644)
	escaped := strings.ReplaceAll(pic, " ", `\ `)

	s, f, _, errw := newTestSession(t)
	f.vision = true
	if err := s.ensureModel(context.Background()); err != nil || !s.vision {
		t.Fatalf("ensureModel: %v, vision %v", err, s.vision)
	}
	input := strings.Join([]string{
		"what is in " + escaped + " ?",
		"'" + pic + "' describe it",
		"look at " + notImage,
		"and /nonexistent/x.png",
		"/bye",
	}, "\n")
	if err := s.repl(context.Background(), strings.NewReader(input)); err != nil {
		t.Fatal(err)
	}
	if len(f.chats) != 3 {
		t.Fatalf("chats = %d, want 3 (the non-image is not sent)\n%s", len(f.chats), errw)
	}
	m1 := f.chats[0].Messages[len(f.chats[0].Messages)-1]
	if m1.Content != "what is in  ?" || len(m1.Images) != 1 || !bytes.Equal(m1.Images[0], b.Bytes()) {
		t.Errorf("first message = %q with %d images", m1.Content, len(m1.Images))
	}
	m2 := f.chats[1].Messages[len(f.chats[1].Messages)-1]
	if m2.Content != "describe it" || len(m2.Images) != 1 {
		t.Errorf("message starting with a path = %q with %d images", m2.Content, len(m2.Images))
	}
	if h := f.chats[1].Messages; len(h[0].Images) != 1 {
		t.Errorf("the history lost the first message's image: %+v", h[0])
	}
	m3 := f.chats[2].Messages[len(f.chats[2].Messages)-1]
	if m3.Content != "and /nonexistent/x.png" || len(m3.Images) != 0 {
		t.Errorf("a missing file must stay text: %q, %d images", m3.Content, len(m3.Images))
	}
	e := errw.String()
	if strings.Count(e, "Added image '"+pic+"'") != 2 || !strings.Contains(e, "is not a JPEG, PNG or WebP image") {
		t.Errorf("stderr:\n%s", e)
	}

	// One shot: olm run MODEL "describe /path".
	if err := s.generate(context.Background(), "describe "+escaped); err != nil {
		t.Fatal(err)
	}
	g := f.gens[len(f.gens)-1]
	if g.Prompt != "describe" || len(g.Images) != 1 {
		t.Errorf("one-shot request: prompt %q, %d images", g.Prompt, len(g.Images))
	}

	// A model without vision gets the text as written.
	s2, f2, _, _ := newTestSession(t)
	if err := s2.ensureModel(context.Background()); err != nil || s2.vision {
		t.Fatalf("ensureModel: %v, vision %v", err, s2.vision)
	}
	if err := s2.generate(context.Background(), "describe "+escaped); err != nil {
		t.Fatal(err)
	}
	if g := f2.gens[0]; g.Prompt != "describe "+escaped || len(g.Images) != 0 {
		t.Errorf("text model: prompt %q, %d images", g.Prompt, len(g.Images))
	}
}
