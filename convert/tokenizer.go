package convert

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/olmhq/olm/internal/gguf"
)

// maxVocab bounds the number of tokens (the largest real vocabularies have
// about 260k); config.json's vocab_size and token ids are untrusted.
const maxVocab = 1 << 21

// maxTokenizerFile bounds tokenizer files read into memory (bytes).
const maxTokenizerFile = 256 << 20

func readSmall(path string) ([]byte, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return nil, err
	}
	if fi.Size() > maxTokenizerFile {
		return nil, fmt.Errorf("%w: %s is %d bytes (limit %d)", ErrInvalid, filepath.Base(path), fi.Size(), maxTokenizerFile)
	}
	return os.ReadFile(path)
}

type addedToken struct {
	ID         int    `json:"id"`
	Content    string `json:"content"`
	Special    bool   `json:"special"`
	Normalized bool   `json:"normalized"`
}

type tokenizerJSON struct {
	AddedTokens   []addedToken    `json:"added_tokens"`
	Normalizer    json.RawMessage `json:"normalizer"`
	PreTokenizer  json.RawMessage `json:"pre_tokenizer"`
	PostProcessor json.RawMessage `json:"post_processor"`
	Model         struct {
		Type   string          `json:"type"`
		Vocab  json.RawMessage `json:"vocab"`
		Merges json.RawMessage `json:"merges"`
	} `json:"model"`
}

// vocab is the tokenizer part of the GGUF metadata being built.
type vocab struct {
	model  string // tokenizer.ggml.model: llama, gpt2, bert
	pre    string
	tokens []string
	scores []float32 // SPM only
	types  []int32
	merges []string // BPE: never nil, possibly empty
}

// loadVocab reads the directory's tokenizer, as llama.cpp's converter
// would for architecture a, and writes tokenizer.* metadata into m.
func loadVocab(dir string, h hparams, a *arch, m *meta) (*vocab, error) {
	spm := filepath.Join(dir, "tokenizer.model")
	tj := filepath.Join(dir, "tokenizer.json")
	_, spmErr := os.Stat(spm)
	_, tjErr := os.Stat(tj)
	var v *vocab
	var err error
	var tok *tokenizerJSON
	if tjErr == nil {
		b, err := readSmall(tj)
		if err != nil {
			return nil, err
		}
		tok = &tokenizerJSON{}
		if err := json.Unmarshal(b, tok); err != nil {
			return nil, fmt.Errorf("%w: tokenizer.json: %v", ErrInvalid, err)
		}
	}
	tc := readTokenizerConfig(dir)
	switch {
	case a.spmFirst && spmErr == nil:
		v, err = sentencePieceVocab(spm, dir, h, tc)
	case tok != nil:
		v, err = jsonVocab(tok, h, a)
	case spmErr == nil:
		v, err = sentencePieceVocab(spm, dir, h, tc)
	default:
		return nil, fmt.Errorf("%w: no tokenizer.json or tokenizer.model in %s", ErrNotFound, dir)
	}
	if err != nil {
		return nil, err
	}
	m.set("tokenizer.ggml.model", gguf.String(v.model))
	m.set("tokenizer.ggml.pre", gguf.String(v.pre))
	m.set("tokenizer.ggml.tokens", gguf.ArrayOf(v.tokens))
	if v.scores != nil {
		m.set("tokenizer.ggml.scores", gguf.ArrayOf(v.scores))
	}
	m.set("tokenizer.ggml.token_type", gguf.ArrayOf(v.types))
	if v.model == "bert" {
		m.set("tokenizer.ggml.token_type_count", gguf.Uint32(uint32(intOr(h, "type_vocab_size", 1))))
	}
	if v.merges != nil { // every BPE vocabulary, even without merges
		m.set("tokenizer.ggml.merges", gguf.ArrayOf(v.merges))
	}
	if err := specialVocab(dir, h, tok, tc, len(v.tokens), m); err != nil {
		return nil, err
	}
	if v.model == "llama" {
		if a.noSpacePrefix {
			m.set("tokenizer.ggml.add_space_prefix", gguf.Bool(false))
		} else if b, ok := tc["add_prefix_space"].(bool); ok {
			m.set("tokenizer.ggml.add_space_prefix", gguf.Bool(b))
		}
	}
	return v, nil
}

func readTokenizerConfig(dir string) map[string]any {
	b, err := readSmall(filepath.Join(dir, "tokenizer_config.json"))
	if err != nil {
		return nil
	}
	var tc map[string]any
	if json.Unmarshal(b, &tc) != nil {
		return nil
	}
	return tc
}

// looksSpecial mirrors llama.cpp's does_token_look_special.
func looksSpecial(s string) bool {
	switch s {
	case "<pad>", "<mask>", "<2mass>", "[@BOS@]":
		return true
	}
	return (strings.HasPrefix(s, "<|") && strings.HasSuffix(s, "|>")) ||
		(strings.HasPrefix(s, "<｜") && strings.HasSuffix(s, "｜>")) ||
		(strings.HasPrefix(s, "<unused") && strings.HasSuffix(s, ">"))
}

func sentencePieceVocab(path, dir string, h hparams, tc map[string]any) (*vocab, error) {
	b, err := readSmall(path)
	if err != nil {
		return nil, err
	}
	sp, err := parseSentencePiece(b)
	if err != nil {
		return nil, err
	}
	if sp.modelType != 1 && sp.modelType != 2 {
		return nil, fmt.Errorf("%w: tokenizer.model of SentencePiece model type %d; supported: unigram (1), BPE (2)", ErrUnsupported, sp.modelType)
	}
	n := len(sp.pieces)
	if vs, ok := h.int("vocab_size"); ok && vs > 0 {
		n = int(vs)
	}
	if n > maxVocab {
		return nil, fmt.Errorf("%w: vocab_size %d", ErrInvalid, n)
	}
	v := &vocab{model: "llama", pre: "default", tokens: make([]string, n), scores: make([]float32, n), types: make([]int32, n)}
	for i := range v.tokens {
		v.tokens[i] = fmt.Sprintf("[PAD%d]", i)
		v.scores[i] = -10000
		v.types[i] = tokUnused
	}
	for i, p := range sp.pieces {
		if i >= n {
			break
		}
		v.tokens[i], v.scores[i], v.types[i] = p.piece, p.score, p.typ
	}
	if b, err := readSmall(filepath.Join(dir, "added_tokens.json")); err == nil {
		var added map[string]int
		if err := json.Unmarshal(b, &added); err != nil {
			return nil, fmt.Errorf("%w: added_tokens.json: %v", ErrInvalid, err)
		}
		for tok, id := range added {
			if id >= 0 && id < n {
				v.tokens[id], v.scores[id], v.types[id] = tok, -1000, tokUserDefined
			}
		}
	}
	if dec, ok := tc["added_tokens_decoder"].(map[string]any); ok {
		ids := make([]string, 0, len(dec))
		for k := range dec {
			ids = append(ids, k)
		}
		sort.Strings(ids)
		for _, k := range ids {
			var id int
			if _, err := fmt.Sscan(k, &id); err != nil || id < 0 || id >= n {
				continue
			}
			e, _ := dec[k].(map[string]any)
			content, _ := e["content"].(string)
			special, _ := e["special"].(bool)
			if special || looksSpecial(content) {
				v.types[id] = tokControl
			} else {
				content = strings.ReplaceAll(content, "▁", " ")
				v.types[id] = tokUserDefined
			}
			v.scores[id] = -1000
			v.tokens[id] = content
		}
	}
	return v, nil
}

func jsonVocab(tok *tokenizerJSON, h hparams, a *arch) (*vocab, error) {
	switch tok.Model.Type {
	case "BPE", "WordPiece":
	default:
		return nil, fmt.Errorf("%w: tokenizer.json model type %q; supported: BPE, WordPiece, and SentencePiece tokenizer.model", ErrUnsupported, tok.Model.Type)
	}
	var vmap map[string]int
	if err := json.Unmarshal(tok.Model.Vocab, &vmap); err != nil {
		return nil, fmt.Errorf("%w: tokenizer.json model.vocab: %v", ErrInvalid, err)
	}
	rev := make(map[int]string, len(vmap)+len(tok.AddedTokens))
	maxID := -1
	for s, id := range vmap {
		if id < 0 || id >= maxVocab {
			return nil, fmt.Errorf("%w: tokenizer.json token %q has id %d", ErrInvalid, s, id)
		}
		rev[id] = s
		maxID = max(maxID, id)
	}
	added := map[int]addedToken{}
	for _, t := range tok.AddedTokens {
		if t.ID < 0 || t.ID >= maxVocab {
			return nil, fmt.Errorf("%w: tokenizer.json added token %q has id %d", ErrInvalid, t.Content, t.ID)
		}
		rev[t.ID] = t.Content
		added[t.ID] = t
		maxID = max(maxID, t.ID)
	}
	n := len(rev)
	if vs, ok := h.int("vocab_size"); ok && vs > 0 {
		n = int(vs)
	}
	if n > maxVocab {
		return nil, fmt.Errorf("%w: vocab_size %d (limit %d)", ErrInvalid, n, maxVocab)
	}
	if maxID >= n {
		return nil, fmt.Errorf("%w: tokenizer has token id %d but config.json vocab_size is %d", ErrInvalid, maxID, n)
	}
	v := &vocab{model: "gpt2", tokens: make([]string, n), types: make([]int32, n)}
	for i := 0; i < n; i++ {
		s, ok := rev[i]
		if !ok {
			v.tokens[i], v.types[i] = fmt.Sprintf("[PAD%d]", i), tokUnused
			continue
		}
		if t, isAdded := added[i]; isAdded && t.Content == s {
			if t.Special || looksSpecial(s) {
				v.types[i] = tokControl
			} else {
				s = strings.ReplaceAll(s, "▁", " ")
				v.types[i] = tokUserDefined
			}
		} else {
			v.types[i] = tokNormal
		}
		v.tokens[i] = s
	}
	if tok.Model.Type == "WordPiece" {
		v.model, v.pre = "bert", "default"
		for i, s := range v.tokens {
			if v.types[i] == tokControl {
				continue
			}
			if strings.HasPrefix(s, "##") {
				v.tokens[i] = s[2:]
			} else {
				v.tokens[i] = "▁" + s
			}
		}
		return v, nil
	}
	merges, err := parseMerges(tok.Model.Merges)
	if err != nil {
		return nil, err
	}
	if merges == nil {
		// A BPE tokenizer without merges (tokens are never merged, as
		// Hugging Face tokenizers reads an absent or empty list) still
		// needs the key: llama.cpp refuses a gpt2 vocabulary without it
		// ("cannot find tokenizer merges"), and reads an empty array as
		// no merges.
		merges = []string{}
	}
	v.merges = merges
	v.pre = detectPre(tok.PreTokenizer)
	return v, nil
}

func parseMerges(raw json.RawMessage) ([]string, error) {
	if len(raw) == 0 || string(raw) == "null" {
		return nil, nil
	}
	var s []string
	if err := json.Unmarshal(raw, &s); err == nil {
		return s, nil
	}
	var pairs [][]string
	if err := json.Unmarshal(raw, &pairs); err != nil {
		return nil, fmt.Errorf("%w: tokenizer.json model.merges is neither strings nor pairs", ErrInvalid)
	}
	out := make([]string, len(pairs))
	enc := func(p string) string { return strings.ReplaceAll(p, " ", "Ġ") }
	for i, p := range pairs {
		if len(p) != 2 {
			return nil, fmt.Errorf("%w: tokenizer.json merge %d has %d parts", ErrInvalid, i, len(p))
		}
		out[i] = enc(p[0]) + " " + enc(p[1])
	}
	return out, nil
}

// Pre-tokenizer regular expressions of well-known BPE tokenizers, as they
// appear in tokenizer.json (llama-vocab.cpp quotes them as "original regex
// from tokenizer.json"), and llama.cpp's name for each.
var preRegexes = map[string]string{
	`[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]*[\p{Ll}\p{Lm}\p{Lo}\p{M}]+|[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]+[\p{Ll}\p{Lm}\p{Lo}\p{M}]*|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n/]*|\s*[\r\n]+|\s+(?!\S)|\s+`:                                                                "tekken",
	`(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?[\p{L}\p{M}]+|\p{N}| ?[^\s\p{L}\p{M}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+`:                                                                                                                                                         "qwen35",
	`(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+`:                                                                                                                                                                "llama-bpe",
	`(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+`:                                                                                                                                                                     "qwen2",
	`[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]*[\p{Ll}\p{Lm}\p{Lo}\p{M}]+(?i:'s|'t|'re|'ve|'m|'ll|'d)?|[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]+[\p{Ll}\p{Lm}\p{Lo}\p{M}]*(?i:'s|'t|'re|'ve|'m|'ll|'d)?|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n/]*|\s*[\r\n]+|\s+(?!\S)|\s+`: "gpt-4o",
}

// detectPre names the pre-tokenizer as llama.cpp does (tokenizer.ggml.pre).
// llama.cpp's converter recognises it by hashing the tokens of a probe
// text; without a tokenizer implementation this looks at the split regex
// instead, and answers "default" for patterns it does not know.
func detectPre(raw json.RawMessage) string {
	var regexes []string
	byteLevelRegex := false
	var walk func(any)
	walk = func(x any) {
		m, ok := x.(map[string]any)
		if !ok {
			return
		}
		switch m["type"] {
		case "Sequence":
			ps, _ := m["pretokenizers"].([]any)
			for _, p := range ps {
				walk(p)
			}
		case "Split":
			if p, ok := m["pattern"].(map[string]any); ok {
				if r, ok := p["Regex"].(string); ok {
					regexes = append(regexes, r)
				}
			}
		case "ByteLevel":
			if u, ok := m["use_regex"].(bool); !ok || u {
				byteLevelRegex = true
			}
		}
	}
	var x any
	if json.Unmarshal(raw, &x) == nil {
		walk(x)
	}
	if len(regexes) == 0 && byteLevelRegex {
		return "gpt-2"
	}
	if len(regexes) == 1 {
		if name, ok := preRegexes[regexes[0]]; ok {
			return name
		}
	}
	return "default"
}

var specialKeys = map[string]string{
	"bos": "tokenizer.ggml.bos_token_id", "eos": "tokenizer.ggml.eos_token_id",
	"unk": "tokenizer.ggml.unknown_token_id", "sep": "tokenizer.ggml.seperator_token_id",
	"pad": "tokenizer.ggml.padding_token_id", "cls": "tokenizer.ggml.cls_token_id",
	"mask": "tokenizer.ggml.mask_token_id",
}

var specialOrder = []string{"bos", "eos", "unk", "sep", "pad", "cls", "mask"}

// specialVocab mirrors gguf-py's SpecialVocab: special token ids from
// tokenizer_config.json (looked up among tokenizer.json's added tokens) and
// config.json, add_*_token flags, and the chat template.
func specialVocab(dir string, h hparams, tok *tokenizerJSON, tc map[string]any, n int, m *meta) error {
	ids := map[string]int{}
	addFlags := map[string]bool{}
	set := func(typ string, id int) {
		if _, done := ids[typ]; !done && id >= 0 && id < n {
			ids[typ] = id
		}
	}
	content := func(typ string) string {
		switch e := tc[typ+"_token"].(type) {
		case string:
			return e
		case map[string]any:
			s, _ := e["content"].(string)
			return s
		}
		return ""
	}
	if tok != nil && tc != nil {
		if content("bos") == "" && content("cls") != "" {
			tc["bos_token"] = content("cls")
		}
		if content("eos") == "" && content("sep") != "" {
			tc["eos_token"] = content("sep")
		}
	}
	if tok != nil && len(tok.PostProcessor) > 0 {
		var pp map[string]any
		_ = json.Unmarshal(tok.PostProcessor, &pp)
		procs := []any{pp}
		if ps, ok := pp["processors"].([]any); ok {
			procs = ps
		}
		for _, p := range procs {
			pm, _ := p.(map[string]any)
			switch pm["type"] {
			case "RobertaProcessing":
				addFlags["bos"], addFlags["eos"], addFlags["sep"] = true, true, true
			case "TemplateProcessing":
				single, _ := pm["single"].([]any)
				if len(single) > 1 {
					first := specialID(single[0])
					last := specialID(single[len(single)-1])
					if first != "" {
						addFlags["bos"] = first == content("bos") || first == content("cls")
					}
					if last != "" {
						addFlags["eos"] = last == content("eos")
					}
				}
			}
		}
	}
	if tc != nil {
		for _, typ := range specialOrder {
			if b, ok := tc["add_"+typ+"_token"].(bool); ok {
				addFlags[typ] = b
			}
			c := content(typ)
			if c == "" || tok == nil {
				continue
			}
			for _, t := range tok.AddedTokens {
				if t.Content == c {
					set(typ, t.ID)
					break
				}
			}
		}
	}
	for _, typ := range specialOrder {
		if id, ok := h.int(typ + "_token_id"); ok {
			set(typ, int(id))
		}
	}
	for _, typ := range specialOrder {
		if id, ok := ids[typ]; ok {
			m.set(specialKeys[typ], gguf.Uint32(uint32(id)))
		}
	}
	for _, typ := range []string{"bos", "eos", "sep"} {
		if b, ok := addFlags[typ]; ok {
			m.set("tokenizer.ggml.add_"+typ+"_token", gguf.Bool(b))
		}
	}
	if tok != nil && len(tok.Normalizer) > 0 {
		var n any
		_ = json.Unmarshal(tok.Normalizer, &n)
		lower, strip := normalizerFlags(n)
		if lower != nil {
			m.set("tokenizer.ggml.normalizer.lowercase", gguf.Bool(*lower))
		}
		if strip != nil {
			m.set("tokenizer.ggml.normalizer.strip_accents", gguf.Bool(*strip))
		}
	}
	if tc == nil {
		return nil
	}
	var tmpl any = tc["chat_template"]
	if tmpl == nil {
		if b, err := readSmall(filepath.Join(dir, "chat_template.jinja")); err == nil {
			tmpl = string(b)
		} else if b, err := readSmall(filepath.Join(dir, "chat_template.json")); err == nil {
			var ct map[string]any
			if json.Unmarshal(b, &ct) == nil {
				tmpl = ct["chat_template"]
			}
		}
	}
	switch t := tmpl.(type) {
	case string:
		m.set("tokenizer.chat_template", gguf.String(t))
	case []any:
		var names []string
		for _, e := range t {
			em, _ := e.(map[string]any)
			name, _ := em["name"].(string)
			body, _ := em["template"].(string)
			if name == "" {
				continue
			}
			if name == "default" {
				m.set("tokenizer.chat_template", gguf.String(body))
			} else {
				m.set("tokenizer.chat_template."+name, gguf.String(body))
				names = append(names, name)
			}
		}
		if len(names) > 0 {
			m.set("tokenizer.chat_templates", gguf.ArrayOf(names))
		}
	}
	return nil
}

func specialID(x any) string {
	m, _ := x.(map[string]any)
	st, _ := m["SpecialToken"].(map[string]any)
	s, _ := st["id"].(string)
	return s
}

// normalizerFlags reads lowercasing and accent stripping from a
// tokenizer.json normalizer (Lowercase, StripAccents, BertNormalizer, or a
// Sequence of them), as gguf-py's SpecialVocab does; nil means not said.
func normalizerFlags(x any) (lower, strip *bool) {
	t := true
	m, _ := x.(map[string]any)
	switch m["type"] {
	case "Lowercase":
		lower = &t
	case "StripAccents":
		strip = &t
	case "BertNormalizer":
		if b, ok := m["lowercase"].(bool); ok {
			lower = &b
		}
		if b, ok := m["strip_accents"].(bool); ok {
			strip = &b
		}
	case "Sequence":
		ns, _ := m["normalizers"].([]any)
		for _, n := range ns {
			l, s := normalizerFlags(n)
			if l != nil {
				lower = l
			}
			if s != nil {
				strip = s
			}
		}
	}
	return lower, strip
}
