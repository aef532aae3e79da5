package openai

import (
	"encoding/json"
	"testing"
)

func TestContent(t *testing.T) {
	tests := []struct {
		in     string
		text   string
		images int
		null   bool
		err    bool
	}{
		{`"hi"`, "hi", 0, false, false},
		{`null`, "", 0, true, false},
		{`[{"type":"text","text":"a"},{"type":"text","text":"b"}]`, "ab", 0, false, false},
		{`[{"type":"text","text":"look"},{"type":"image_url","image_url":{"url":"data:image/png;base64,AAAA"}}]`, "look", 1, false, false},
		{`[{"type":"audio"}]`, "", 0, false, true},
		{`[{"type":"image_url"}]`, "", 0, false, true},
		{`5`, "", 0, false, true},
	}
	for _, tt := range tests {
		var c Content
		err := json.Unmarshal([]byte(tt.in), &c)
		if (err != nil) != tt.err {
			t.Errorf("%s: err = %v", tt.in, err)
			continue
		}
		if err == nil && (c.Text != tt.text || len(c.Images) != tt.images || c.Null != tt.null) {
			t.Errorf("%s: got %+v", tt.in, c)
		}
	}
	for _, tt := range []struct {
		c    Content
		want string
	}{
		{Content{Text: "x"}, `"x"`},
		{Content{Null: true}, `null`},
		{Content{Text: "x", Images: []string{"data:,"}}, `[{"type":"text","text":"x"},{"type":"image_url","image_url":{"url":"data:,"}}]`},
	} {
		b, _ := json.Marshal(tt.c)
		if string(b) != tt.want {
			t.Errorf("marshal %+v = %s, want %s", tt.c, b, tt.want)
		}
	}
}

func TestStringOrList(t *testing.T) {
	var r ChatCompletionRequest
	if err := json.Unmarshal([]byte(`{"stop":"END"}`), &r); err != nil || len(r.Stop) != 1 {
		t.Errorf("string stop: %v %v", r.Stop, err)
	}
	if err := json.Unmarshal([]byte(`{"stop":["a","b"]}`), &r); err != nil || len(r.Stop) != 2 {
		t.Errorf("list stop: %v %v", r.Stop, err)
	}
	if err := json.Unmarshal([]byte(`{"stop":7}`), &r); err == nil {
		t.Errorf("number stop accepted")
	}
}
