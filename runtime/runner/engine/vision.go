package engine

import (
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/olmhq/olm/runtime/llama"
	"github.com/olmhq/olm/runtime/runner"
)

// Image positions in a task's prompt and a slot's cache hold negative
// placeholders, never vocabulary tokens. Position j of an image gets a
// value made from the image's content hash and j, so the prompt cache
// (commonPrefix) reuses an image's KV entries for a later prompt with the
// same image at the same place (the next turn of a chat), and a part of an
// image left by a context shift never matches a whole one.
func isImage(tok llama.Token) bool { return tok < 0 }

// imagePlaceholder returns the placeholder of position j of the image whose
// libmtmd chunk ID (a hex SHA-256 of the image file) is id.
func imagePlaceholder(id string, j int) llama.Token {
	var h uint32
	if len(id) >= 8 {
		if v, err := strconv.ParseUint(id[:8], 16, 32); err == nil {
			h = uint32(v)
		}
	}
	if h == 0 { // no usable ID: a value no other request has
		h = uint32(imageSerial.Add(1)) * 2654435761
	}
	return -1 - llama.Token((h+uint32(j))&0x3fffffff)
}

var imageSerial atomic.Uint32

// imageSpan is one image of a task's prompt: positions [start, start+n)
// hold its placeholders, and chunk is its index in the task's Chunks.
type imageSpan struct {
	start, n, chunk int
}

// errNoVision is the answer to images sent to a model without a projector.
func errNoVision() error {
	return fmt.Errorf("%w: model does not support images (it has no multimodal projector)", runner.ErrBadRequest)
}

// imageTag matches Ollama's image references: [img-N] (the Nth image of
// the request) and [img] (the next one).
var imageTag = regexp.MustCompile(`\[img(?:-(\d+))?\]`)

// placeImages returns text with every reference to an image (ImageMarker,
// [img-N], [img]) replaced by ImageMarker, and the index of the image each
// marker stands for, in text order. Images that text never refers to are
// placed at its start, as Ollama does. A reference to an image that does
// not exist is an error wrapping ErrBadRequest.
func placeImages(text string, n int) (string, []int, error) {
	var order []int
	used := make([]bool, n)
	next := 0 // the image a plain marker or [img] stands for
	take := func(i int) error {
		if i < 0 || i >= n {
			return fmt.Errorf("%w: the prompt refers to image %d, but the request has %d", runner.ErrBadRequest, i, n)
		}
		order = append(order, i)
		used[i] = true
		for next < n && used[next] {
			next++
		}
		return nil
	}
	var b strings.Builder
	rest := text
	for {
		mi := strings.Index(rest, runner.ImageMarker)
		loc := imageTag.FindStringSubmatchIndex(rest)
		if mi < 0 && loc == nil {
			b.WriteString(rest)
			break
		}
		if loc == nil || (mi >= 0 && mi < loc[0]) {
			b.WriteString(rest[:mi+len(runner.ImageMarker)])
			rest = rest[mi+len(runner.ImageMarker):]
			if err := take(next); err != nil {
				return "", nil, err
			}
			continue
		}
		b.WriteString(rest[:loc[0]])
		b.WriteString(runner.ImageMarker)
		i := next
		if loc[2] >= 0 {
			k, err := strconv.Atoi(rest[loc[2]:loc[3]])
			if err != nil {
				k = -1
			}
			i = k
		}
		rest = rest[loc[1]:]
		if err := take(i); err != nil {
			return "", nil, err
		}
	}
	var pre strings.Builder
	var first []int
	for i, u := range used {
		if !u {
			pre.WriteString(runner.ImageMarker)
			first = append(first, i)
		}
	}
	if pre.Len() == 0 {
		return b.String(), order, nil
	}
	return pre.String() + b.String(), append(first, order...), nil
}

// markMessageImages puts a marker for each image of a chat message into its
// content, as Ollama does: "[img]" tags take the message's images in order,
// and images without a tag go to the start of the content. base is the
// request-wide index of the message's first image; [img-N] tags already in
// the content are left for placeImages.
func markMessageImages(content string, base, n int) string {
	var prefix strings.Builder
	for i := 0; i < n; i++ {
		tag := fmt.Sprintf("[img-%d]", base+i)
		switch {
		case strings.Contains(content, tag):
		case strings.Contains(content, "[img]"):
			content = strings.Replace(content, "[img]", tag, 1)
		default:
			prefix.WriteString(tag)
		}
	}
	return prefix.String() + content
}

// tokenize tokenizes a prompt with its images (none: tokenizePrompt).
func (e *Engine) tokenize(text string, images [][]byte) ([]llama.Token, []imageSpan, *llama.Chunks, error) {
	if len(images) == 0 {
		toks, err := e.tokenizePrompt(text)
		return toks, nil, nil, err
	}
	return e.tokenizeImages(text, images)
}

// tokenizeImages tokenizes a prompt with images through the projector. It
// returns the prompt with placeholders at the images' positions, the spans
// of the images, and the chunks to evaluate them from (the caller closes
// them, or hands them to a task).
func (e *Engine) tokenizeImages(text string, images [][]byte) ([]llama.Token, []imageSpan, *llama.Chunks, error) {
	if e.proj == nil {
		return nil, nil, nil, errNoVision()
	}
	text, order, err := placeImages(text, len(images))
	if err != nil {
		return nil, nil, nil, err
	}
	bitmaps := make([]*llama.Bitmap, len(images))
	defer func() {
		for _, b := range bitmaps {
			b.Close()
		}
	}()
	for i, data := range images {
		if bitmaps[i], err = e.proj.NewBitmap(data); err != nil {
			return nil, nil, nil, fmt.Errorf("%w: image %d: %w", runner.ErrBadRequest, i, err)
		}
	}
	ordered := make([]*llama.Bitmap, len(order))
	for i, k := range order {
		ordered[i] = bitmaps[k]
	}
	chunks, err := e.proj.Tokenize(text, ordered, true, true)
	if err != nil {
		return nil, nil, nil, fmt.Errorf("%w: %w", runner.ErrBadRequest, err)
	}
	var prompt []llama.Token
	var spans []imageSpan
	for i := 0; i < chunks.Len(); i++ {
		c := chunks.Chunk(i)
		if !c.Image {
			prompt = append(prompt, c.Tokens...)
			continue
		}
		spans = append(spans, imageSpan{start: len(prompt), n: c.NumPos, chunk: i})
		for j := 0; j < c.NumPos; j++ {
			prompt = append(prompt, imagePlaceholder(c.ID, j))
		}
	}
	// A template that writes BOS itself gets a second one from the
	// tokenizer: drop it, as tokenizePrompt does.
	if bos := e.model.BOS(); len(prompt) >= 2 && bos != llama.TokenNull && prompt[0] == bos && prompt[1] == bos && (len(spans) == 0 || spans[0].start > 0) {
		prompt = prompt[1:]
		for i := range spans {
			spans[i].start--
		}
	}
	if len(prompt) >= e.nCtxSeq {
		chunks.Close()
		return nil, nil, nil, fmt.Errorf("%w: the prompt with its images takes %d tokens, the context holds %d (prompts with images are not truncated)", runner.ErrContextLength, len(prompt), e.nCtxSeq)
	}
	return prompt, spans, chunks, nil
}

// evalImage decodes the image that starts at slot s's next position, on
// its own (not in the shared batch). When the image ends the prompt, the
// first token is sampled from its logits at once.
func (e *Engine) evalImage(s *slot) {
	t := s.t
	pos := len(s.cache)
	var sp *imageSpan
	for i := range t.images {
		if t.images[i].start == pos {
			sp = &t.images[i]
			break
		}
	}
	if sp == nil {
		e.finish(s, "", fmt.Errorf("internal error: no image starts at position %d", pos))
		return
	}
	last := sp.start+sp.n == len(s.prompt)
	next, err := e.lctx.EvalChunk(t.ctx, e.proj, t.chunks, sp.chunk, pos, s.id, e.nBatch, last)
	if err == nil && next != pos+sp.n {
		err = fmt.Errorf("image took %d positions, expected %d", next-pos, sp.n)
	}
	if err != nil {
		e.lctx.KVSeqRemove(s.id, -1, -1)
		s.cache = s.cache[:0]
		e.finish(s, "", fmt.Errorf("image: %w", err))
		return
	}
	s.cache = append(s.cache, s.prompt[pos:pos+sp.n]...)
	if last {
		tok, err := s.smp.Sample(e.lctx, -1)
		if err != nil {
			e.finish(s, "", fmt.Errorf("sample: %w", err))
			return
		}
		s.state = slotGen
		s.tFirst = time.Now()
		e.accept(s, tok)
	}
}
