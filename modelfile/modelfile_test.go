package modelfile

import (
	"bytes"
	"errors"
	"flag"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

var update = flag.Bool("update", false, "rewrite golden files")

func TestParse(t *testing.T) {
	src := "\uFEFF# a comment\r\n" +
		"from llama3.2\n" +
		"FROM ./mmproj.gguf\n" +
		"  PARAMETER Temperature 0.7\n" +
		"PARAMETER stop \"<|eot_id|>\"\n" +
		"PARAMETER stop USER:\n" +
		"PARAMETER num_ctx 4096\n" +
		"PARAMETER use_mmap false\n" +
		"Template \"\"\"{{ .System }}\n" +
		"USER: {{ .Prompt }}\"\"\"\n" +
		"SYSTEM \"\n  You are Mario.\n\"\n" +
		"ADAPTER ~/lora.gguf\n" +
		"LICENSE MIT\n" +
		"LICENSE \"\"\"Apache \"2.0\"\"\"\"\n" +
		"MESSAGE User hi there\n" +
		"message assistant \"Hello!\"\n" +
		"REQUIRES 0.5.1\n" +
		"SYSTEM   say \"hi\" # not a comment   \n"
	m, err := ParseString(src)
	if err != nil {
		t.Fatal(err)
	}
	want := []Command{
		{Instruction: From, Value: "llama3.2"},
		{Instruction: From, Value: "./mmproj.gguf"},
		{Instruction: Parameter, Name: "temperature", Value: "0.7"},
		{Instruction: Parameter, Name: "stop", Value: "<|eot_id|>"},
		{Instruction: Parameter, Name: "stop", Value: "USER:"},
		{Instruction: Parameter, Name: "num_ctx", Value: "4096"},
		{Instruction: Parameter, Name: "use_mmap", Value: "false"},
		{Instruction: Template, Value: "{{ .System }}\nUSER: {{ .Prompt }}"},
		{Instruction: System, Value: "\n  You are Mario.\n"},
		{Instruction: Adapter, Value: "~/lora.gguf"},
		{Instruction: License, Value: "MIT"},
		{Instruction: License, Value: `Apache "2.0"`},
		{Instruction: Message, Name: "user", Value: "hi there"},
		{Instruction: Message, Name: "assistant", Value: "Hello!"},
		{Instruction: Requires, Value: "0.5.1"},
		{Instruction: System, Value: `say "hi" # not a comment`},
	}
	if !m.Equal(&Modelfile{Commands: want}) {
		t.Fatalf("commands:\n got %#v\nwant %#v", m.Commands, want)
	}
	if got := m.Commands[2].Pos; got != (Position{Line: 4, Column: 3}) {
		t.Errorf("PARAMETER position = %v, want 4:3", got)
	}
	p, err := m.Parameters()
	if err != nil {
		t.Fatal(err)
	}
	wantP := Parameters{"temperature": 0.7, "stop": []string{"<|eot_id|>", "USER:"}, "num_ctx": int64(4096), "use_mmap": false}
	if !reflect.DeepEqual(p, wantP) {
		t.Errorf("Parameters = %#v, want %#v", p, wantP)
	}
	if s, _ := m.System(); s != `say "hi" # not a comment` {
		t.Errorf("System = %q (the last SYSTEM wins)", s)
	}
	if got := m.Licenses(); len(got) != 2 {
		t.Errorf("Licenses = %q", got)
	}
	if got := m.Messages(); len(got) != 2 || got[0] != (ChatMessage{"user", "hi there"}) {
		t.Errorf("Messages = %#v", got)
	}
	if got := m.Froms(); !reflect.DeepEqual(got, []string{"llama3.2", "./mmproj.gguf"}) {
		t.Errorf("Froms = %q", got)
	}
}

func TestParseErrors(t *testing.T) {
	tests := []struct {
		name, src string
		err       error
		pos       Position
		msg       string // substring of the message
	}{
		{"missing from", "SYSTEM hi\n", ErrMissingFrom, Position{2, 1}, "FROM"},
		{"empty", "", ErrMissingFrom, Position{1, 1}, "FROM"},
		{"unknown instruction", "FROM x\nINCLUDE y\n", ErrUnknownInstruction, Position{2, 1}, `"INCLUDE": expected one of FROM, PARAMETER`},
		{"instruction glued", "FROM x\nFROM:y\n", ErrUnknownInstruction, Position{2, 1}, `"FROM:y"`},
		{"from without value", "FROM\n", ErrMissingValue, Position{1, 5}, "expected FROM <model name"},
		{"from blank value", "FROM   \nSYSTEM x", ErrMissingValue, Position{1, 8}, "FROM"},
		{"from empty quotes", "FROM \"\"\n", ErrMissingValue, Position{1, 6}, "non-empty"},
		{"unknown parameter", "FROM x\nPARAMETER temprature 1\n", ErrUnknownParameter, Position{2, 11}, "valid parameters: f16_kv, frequency_penalty"},
		{"parameter no name", "FROM x\nPARAMETER\n", ErrMissingValue, Position{2, 10}, "PARAMETER <name> <value>"},
		{"parameter no value", "FROM x\nPARAMETER top_k\n", ErrMissingValue, Position{2, 16}, "PARAMETER <name> <value>"},
		{"int type", "FROM x\nPARAMETER num_ctx 4k\n", ErrInvalidParameterValue, Position{2, 19}, "num_ctx must be a integer"},
		{"float type", "FROM x\nPARAMETER temperature hot\n", ErrInvalidParameterValue, Position{2, 23}, "temperature must be a number"},
		{"bool type", "FROM x\nPARAMETER use_mmap maybe\n", ErrInvalidParameterValue, Position{2, 20}, "boolean"},
		{"int overflow", "FROM x\nPARAMETER seed 99999999999999999999\n", ErrInvalidParameterValue, Position{2, 16}, "seed"},
		{"nan", "FROM x\nPARAMETER top_p NaN\n", ErrInvalidParameterValue, Position{2, 17}, "top_p"},
		{"bad role", "FROM x\nMESSAGE tool hi\n", ErrInvalidRole, Position{2, 9}, "expected system, user or assistant"},
		{"message no role", "FROM x\nMESSAGE\n", ErrMissingValue, Position{2, 8}, "MESSAGE <system|user|assistant> <text>"},
		{"message no text", "FROM x\nMESSAGE user\n", ErrMissingValue, Position{2, 13}, "MESSAGE <role> <text>"},
		{"unterminated", "FROM x\nSYSTEM \"hi\n", ErrUnterminatedQuote, Position{2, 8}, `closing "`},
		{"unterminated triple", "FROM x\nTEMPLATE \"\"\"hi\"\"\n", ErrUnterminatedQuote, Position{2, 10}, `closing """`},
		{"trailing", "FROM x\nSYSTEM \"hi\" there\n", ErrTrailingText, Position{2, 13}, `"there"`},
		{"requires", "FROM x\nREQUIRES latest\n", ErrInvalidRequires, Position{2, 10}, "MAJOR.MINOR.PATCH"},
		{"column in runes", "FROM x\nSYSTEM \"é\" ü\n", ErrTrailingText, Position{2, 12}, `"ü"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := ParseString(tt.src)
			if !errors.Is(err, tt.err) {
				t.Fatalf("err = %v, want %v", err, tt.err)
			}
			var pe *Error
			if !errors.As(err, &pe) {
				t.Fatalf("err %T is not *Error", err)
			}
			if pe.Pos != tt.pos {
				t.Errorf("pos = %v, want %v (%v)", pe.Pos, tt.pos, err)
			}
			if !strings.Contains(err.Error(), tt.msg) {
				t.Errorf("message %q does not contain %q", err.Error(), tt.msg)
			}
			if !strings.HasPrefix(err.Error(), tt.pos.String()+": ") {
				t.Errorf("message %q does not start with the position", err.Error())
			}
		})
	}
}

func TestParseFileError(t *testing.T) {
	p := filepath.Join(t.TempDir(), "Modelfile")
	os.WriteFile(p, []byte("FROM x\nPARAMETER bogus 1\n"), 0o644)
	_, err := ParseFile(p)
	if !errors.Is(err, ErrUnknownParameter) || !strings.HasPrefix(err.Error(), p+":2:11: unknown parameter") {
		t.Fatalf("err = %v", err)
	}
	_, err = ParseFile(filepath.Join(t.TempDir(), "none"))
	if !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("err = %v", err)
	}
}

func TestTooLarge(t *testing.T) {
	_, err := Parse(strings.NewReader("FROM x\nSYSTEM " + strings.Repeat("a", MaxSize)))
	if !errors.Is(err, ErrTooLarge) {
		t.Fatalf("err = %v", err)
	}
}

func TestQuote(t *testing.T) {
	tests := []struct{ in, want string }{
		{"plain", "plain"},
		{"two words", "two words"},
		{"", `""`},
		{"é", "é"},
		{" lead", `" lead"`},
		{"a\nb", "\"\"\"a\nb\"\"\""},
		{"a\n\"\"\"b", ""},
		{`"q"`, `""""q""""`},
		{"say \"hi\"\nbye", "\"\"\"say \"hi\"\nbye\"\"\""},
		{`ends with """`, `ends with """`},
		{"x\n\"\"\"", "\"\"\"x\n\"\"\"\"\"\""},
	}
	for _, tt := range tests {
		got, err := Quote(tt.in)
		if tt.want == "" && errors.Is(err, ErrUnrepresentable) {
			continue
		}
		if err != nil || got != tt.want {
			t.Errorf("Quote(%q) = %q, %v; want %q", tt.in, got, err, tt.want)
		}
	}
	if _, err := Quote("a\n\"\"\"b\""); !errors.Is(err, ErrUnrepresentable) {
		t.Errorf("Quote of an unrepresentable value: err = %v", err)
	}
}

func TestValidate(t *testing.T) {
	tests := []struct {
		m   Modelfile
		err error
	}{
		{Modelfile{}, ErrMissingFrom},
		{Modelfile{Commands: []Command{{Instruction: From, Value: "x"}}}, nil},
		{Modelfile{Commands: []Command{{Instruction: From, Value: ""}}}, ErrMissingValue},
		{Modelfile{Commands: []Command{{Instruction: From, Value: "x"}, {Instruction: "RUN", Value: "y"}}}, ErrUnknownInstruction},
		{Modelfile{Commands: []Command{{Instruction: From, Value: "x"}, {Instruction: Parameter, Name: "nope", Value: "1"}}}, ErrUnknownParameter},
		{Modelfile{Commands: []Command{{Instruction: From, Value: "x"}, {Instruction: Parameter, Name: "top_k", Value: "x"}}}, ErrInvalidParameterValue},
		{Modelfile{Commands: []Command{{Instruction: From, Value: "x"}, {Instruction: Message, Name: "bot", Value: "x"}}}, ErrInvalidRole},
		{Modelfile{Commands: []Command{{Instruction: From, Value: "x"}, {Instruction: Requires, Value: "1"}}}, ErrInvalidRequires},
	}
	for i, tt := range tests {
		err := tt.m.Validate()
		if !errors.Is(err, tt.err) || (tt.err == nil) != (err == nil) {
			t.Errorf("%d: Validate = %v, want %v", i, err, tt.err)
		}
	}
}

func TestNormalizeAndMerge(t *testing.T) {
	p, err := Normalize(map[string]any{"num_ctx": 2048.0, "temperature": 1.0, "stop": []any{"a", "b"}, "use_mmap": true})
	if err != nil {
		t.Fatal(err)
	}
	want := Parameters{"num_ctx": int64(2048), "temperature": 1.0, "stop": []string{"a", "b"}, "use_mmap": true}
	if !reflect.DeepEqual(p, want) {
		t.Fatalf("Normalize = %#v", p)
	}
	for _, bad := range []map[string]any{{"num_ctx": 1.5}, {"stop": []any{1}}, {"nope": 1}, {"use_mmap": "perhaps"}} {
		if _, err := Normalize(bad); err == nil {
			t.Errorf("Normalize(%v) succeeded", bad)
		}
	}
	m := Merge(Parameters{"num_ctx": int64(1), "stop": []string{"x"}}, Parameters{"stop": []string{"y"}})
	if !reflect.DeepEqual(m, Parameters{"num_ctx": int64(1), "stop": []string{"y"}}) {
		t.Errorf("Merge = %#v", m)
	}
	cmds := p.Commands()
	var sb strings.Builder
	if err := Format(&sb, &Modelfile{Commands: cmds}); err != nil {
		t.Fatal(err)
	}
	if got := sb.String(); got != "PARAMETER num_ctx 2048\nPARAMETER stop \"a\"\nPARAMETER stop \"b\"\nPARAMETER temperature 1\nPARAMETER use_mmap true\n" {
		t.Errorf("formatted parameters:\n%s", got)
	}
}

func TestPaths(t *testing.T) {
	for v, want := range map[string]bool{"./x": true, "/abs/m.gguf": true, "~/m": true, "m.gguf": true, "llama3.2": false, "ghcr.io/a/b:1": false, "../w": true, "dir/model.safetensors": true} {
		if IsPath(v) != want {
			t.Errorf("IsPath(%q) = %v", v, !want)
		}
	}
	if got := ResolvePath("/work", "/home/u", "./m.gguf"); got != "/work/m.gguf" {
		t.Errorf("relative: %s", got)
	}
	if got := ResolvePath("/work", "/home/u", "~/m.gguf"); got != "/home/u/m.gguf" {
		t.Errorf("home: %s", got)
	}
	if got := ResolvePath("/work", "/home/u", "/a/../b"); got != "/b" {
		t.Errorf("abs: %s", got)
	}
}

// TestGolden formats every testdata/*.modelfile and compares the result with
// the .golden file beside it; the golden output must parse to the same
// commands and format to itself.
func TestGolden(t *testing.T) {
	files, _ := filepath.Glob("testdata/*.modelfile")
	if len(files) == 0 {
		t.Fatal("no testdata/*.modelfile")
	}
	for _, f := range files {
		t.Run(filepath.Base(f), func(t *testing.T) {
			src, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			m, err := Parse(bytes.NewReader(src))
			if err != nil {
				t.Fatal(err)
			}
			var out bytes.Buffer
			if err := Format(&out, m); err != nil {
				t.Fatal(err)
			}
			golden := strings.TrimSuffix(f, ".modelfile") + ".golden"
			if *update {
				os.WriteFile(golden, out.Bytes(), 0o644)
			}
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatalf("%v (run go test -update)", err)
			}
			if !bytes.Equal(out.Bytes(), want) {
				t.Errorf("formatted output differs from %s:\n%s", golden, out.String())
			}
			assertFixedPoint(t, m, out.String())
		})
	}
}

func assertFixedPoint(t *testing.T, m *Modelfile, formatted string) {
	t.Helper()
	m2, err := ParseString(formatted)
	if err != nil {
		t.Fatalf("formatted output does not parse: %v\n%s", err, formatted)
	}
	if !m.Equal(m2) {
		t.Fatalf("round trip changed the commands:\n%#v\n%#v", m.Commands, m2.Commands)
	}
	var again bytes.Buffer
	if err := Format(&again, m2); err != nil {
		t.Fatal(err)
	}
	if again.String() != formatted {
		t.Fatalf("format is not a fixed point:\n%q\n%q", formatted, again.String())
	}
}

func FuzzParse(f *testing.F) {
	files, _ := filepath.Glob("testdata/*.modelfile")
	for _, p := range files {
		b, _ := os.ReadFile(p)
		f.Add(string(b))
	}
	for _, s := range []string{
		"FROM x", "FROM \"\"\"a\"\"\"\"", "FROM x\nSYSTEM \"\"\"\"\"\"\"", "FROM x\nMESSAGE user \"a\nb\"",
		"FROM x\nPARAMETER stop \"\"", "from\tx\r\nsystem\t y \r\n", "FROM x\nSYSTEM \"\"\"\n\"\"\"",
		"FROM x\nLICENSE \"\"\"\"\"\"\n", "FROM \"a b\"\nADAPTER \"\"\"c\"\"\"",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, src string) {
		m, err := ParseString(src)
		if err != nil {
			var pe *Error
			if !errors.As(err, &pe) {
				t.Fatalf("error %v is not *Error", err)
			}
			return
		}
		var out bytes.Buffer
		if err := Format(&out, m); err != nil {
			t.Fatalf("Format of a parsed Modelfile failed: %v", err)
		}
		if _, err := m.Parameters(); err != nil {
			t.Fatalf("Parameters of a parsed Modelfile failed: %v", err)
		}
		assertFixedPoint(t, m, out.String())
	})
}
