package convert

import (
	"bufio"
	"context"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	goruntime "runtime"
	"strings"
	"sync"
	"unsafe"

	"github.com/olmhq/olm/internal/gguf"
)

// Options controls Convert. The zero value converts with defaults.
type Options struct {
	// DType is the GGUF type of matrices: "F16", "BF16" or "F32"
	// (case-insensitive). "" (auto) keeps F16 and BF16 checkpoints in
	// their own type, so their bytes pass through unchanged, and writes
	// F32 checkpoints as F16. Norms, biases and other 1-D tensors are
	// always F32.
	DType string
	// Name is general.name; "" means the directory's base name.
	Name string
	// Progress, when set, is called after each chunk of tensor data with
	// the bytes of tensor data written so far and in total. It is called
	// from the converting goroutine.
	Progress func(done, total int64)
}

// Info describes a checkpoint directory, as Detect finds it.
type Info struct {
	// Architecture is the GGUF architecture ("llama", "qwen2", ...).
	Architecture string
	// HFArchitecture is config.json's architectures[0].
	HFArchitecture string
	// Tokenizer is the GGUF tokenizer model: "llama" (SentencePiece),
	// "gpt2" (byte-level BPE) or "bert" (WordPiece).
	Tokenizer string
	// Tensors is the number of tensors written.
	Tensors int
	// Params is the number of parameters written.
	Params uint64
	// DType is the safetensors dtype holding most bytes ("BF16", ...).
	DType string
	// FileType is the GGUF file type Convert writes with these options
	// ("F16", "BF16", "F32").
	FileType string
	// Files is the safetensors files read, in order.
	Files []string
}

// plan is one tensor of the output and how to make it from the input.
type plan struct {
	info     gguf.TensorInfo
	src      *stTensor // nil for generated tensors
	data     []float32 // generated tensor data
	rows     uint64    // outermost rows taken from src (truncation)
	rowElems uint64
	permute  int // number of heads for the q/k permutation; 0 for none
	addOne   bool
}

type job struct {
	arch  *arch
	h     hparams
	ck    *checkpoint
	meta  *meta
	voc   *vocab
	plans []plan
	info  Info
	total int64
}

// Detect reads a checkpoint directory's config, tokenizer and safetensors
// headers and reports what Convert would make of it with default options,
// or an error naming what is unsupported or missing.
func Detect(dir string) (Info, error) {
	j, err := prepare(dir, Options{})
	if err != nil {
		return Info{}, err
	}
	j.ck.Close()
	return j.info, nil
}

func targetType(opt string, srcDominant string) (gguf.TensorType, gguf.FileType, error) {
	switch strings.ToUpper(opt) {
	case "F16":
		return gguf.TensorF16, gguf.FileTypeF16, nil
	case "BF16":
		return gguf.TensorBF16, gguf.FileTypeBF16, nil
	case "F32":
		return gguf.TensorF32, gguf.FileTypeF32, nil
	case "", "AUTO":
		if srcDominant == "BF16" {
			return gguf.TensorBF16, gguf.FileTypeBF16, nil
		}
		return gguf.TensorF16, gguf.FileTypeF16, nil
	}
	return 0, 0, fmt.Errorf("%w: output dtype %q; supported: F16, BF16, F32", ErrUnsupported, opt)
}

func prepare(dir string, opts Options) (*job, error) {
	h, err := readConfig(dir)
	if err != nil {
		return nil, err
	}
	a, err := findArch(h)
	if err != nil {
		return nil, err
	}
	if p, ok := readPooling(dir); ok {
		h["__pooling"] = p
	}
	ck, err := openCheckpoint(dir)
	if err != nil {
		return nil, err
	}
	j := &job{arch: a, h: h, ck: ck, meta: newMeta(a.gguf)}
	ok := false
	defer func() {
		if !ok {
			ck.Close()
		}
	}()
	bytesBy := map[string]int64{}
	for _, t := range ck.tensors {
		bytesBy[t.DType] += t.size
		j.info.Files = appendUnique(j.info.Files, filepath.Base(t.file.path))
	}
	dominant, most := "", int64(-1)
	for d, n := range bytesBy {
		if n > most || n == most && d < dominant {
			dominant, most = d, n
		}
	}
	outType, fileType, err := targetType(opts.DType, dominant)
	if err != nil {
		return nil, err
	}
	m := j.meta
	m.set("general.architecture", gguf.String(a.gguf))
	name := opts.Name
	if name == "" {
		name = filepath.Base(filepath.Clean(dir))
	}
	m.set("general.name", gguf.String(name))
	generationKV(dir, m)
	if err := a.kv(h, m); err != nil {
		return nil, err
	}
	m.set("general.file_type", gguf.Uint32(uint32(fileType)))
	j.voc, err = loadVocab(dir, h, a, m)
	if err != nil {
		return nil, err
	}
	if err := j.plan(outType); err != nil {
		return nil, err
	}
	j.info = Info{
		Architecture: a.gguf, HFArchitecture: h.architecture(), Tokenizer: j.voc.model,
		Tensors: len(j.plans), DType: dominant, FileType: fileType.String(), Files: j.info.Files,
	}
	for _, p := range j.plans {
		j.info.Params += p.info.Elements()
		j.total += p.info.Size()
	}
	ok = true
	return j, nil
}

func appendUnique(s []string, x string) []string {
	for _, y := range s {
		if y == x {
			return s
		}
	}
	return append(s, x)
}

// readPooling reads the sentence-transformers pooling mode (modules.json).
func readPooling(dir string) (uint32, bool) {
	b, err := readSmall(filepath.Join(dir, "modules.json"))
	if err != nil {
		return 0, false
	}
	var mods []struct{ Type, Path string }
	if json.Unmarshal(b, &mods) != nil {
		return 0, false
	}
	for _, m := range mods {
		if !strings.HasSuffix(m.Type, "Pooling") || strings.Contains(m.Path, "..") {
			continue
		}
		b, err := readSmall(filepath.Join(dir, m.Path, "config.json"))
		if err != nil {
			return 0, false
		}
		var p map[string]any
		if json.Unmarshal(b, &p) != nil {
			return 0, false
		}
		switch {
		case p["pooling_mode_mean_tokens"] == true || p["pooling_mode"] == "mean":
			return 1, true
		case p["pooling_mode_cls_token"] == true || p["pooling_mode"] == "cls":
			return 2, true
		case p["pooling_mode_lasttoken"] == true || p["pooling_mode"] == "lasttoken":
			return 3, true
		}
	}
	return 0, false
}

func (j *job) plan(outType gguf.TensorType) error {
	a, h := j.arch, j.h
	heads, _ := h.int("num_attention_heads", "n_head", "n_heads")
	kvHeads, ok := h.int("num_key_value_heads", "n_kv_heads")
	if !ok {
		kvHeads = heads
	}
	seen := map[string]string{}
	for _, t := range j.ck.tensors {
		base, suffix := t.Name, ""
		if i := strings.LastIndexByte(t.Name, '.'); i >= 0 {
			base, suffix = t.Name[:i], t.Name[i+1:]
		}
		switch suffix {
		case "gamma":
			suffix = "weight"
		case "beta":
			suffix = "bias"
		}
		if a.skipLMHead && base == "lm_head" {
			continue
		}
		g, ok := a.names(base)
		if !ok {
			return fmt.Errorf("%w: tensor %q has no GGUF counterpart for %s", ErrUnsupported, t.Name, h.architecture())
		}
		if g == "" {
			continue
		}
		if suffix != "weight" && suffix != "bias" {
			return fmt.Errorf("%w: tensor %q: unexpected suffix %q", ErrUnsupported, t.Name, suffix)
		}
		name := g + "." + suffix
		if prev, dup := seen[name]; dup {
			return fmt.Errorf("%w: tensors %q and %q both map to %s", ErrInvalid, prev, t.Name, name)
		}
		seen[name] = t.Name
		switch t.DType {
		case "F32", "F16", "BF16":
		default:
			return fmt.Errorf("%w: tensor %q has dtype %s; supported: F32, F16, BF16 (quantized checkpoints must be dequantized first)", ErrUnsupported, t.Name, t.DType)
		}
		if len(t.Shape) > gguf.MaxDims || len(t.Shape) == 0 {
			return fmt.Errorf("%w: tensor %q has shape %v", ErrUnsupported, t.Name, t.Shape)
		}
		p := plan{src: t, rows: t.Shape[0], rowElems: 1}
		for _, d := range t.Shape[1:] {
			p.rowElems *= d
		}
		typ := outType
		if len(t.Shape) <= 1 || strings.HasSuffix(name, "_norm.weight") || g == "position_embd" || g == "token_types" || suffix != "weight" {
			typ = gguf.TensorF32
		}
		if a.permuteQK {
			if strings.HasSuffix(g, ".attn_q") {
				p.permute = int(heads)
			} else if strings.HasSuffix(g, ".attn_k") {
				p.permute = int(kvHeads)
			}
			if p.permute > 0 && (p.rows%uint64(2*p.permute) != 0) {
				return fmt.Errorf("%w: tensor %q: %d rows do not split into %d heads of even size", ErrInvalid, t.Name, p.rows, p.permute)
			}
		}
		p.addOne = a.normPlusOne && strings.HasSuffix(name, "norm.weight")
		if g == "token_embd" && a.truncateEmbd && p.rows > uint64(len(j.voc.tokens)) {
			p.rows = uint64(len(j.voc.tokens))
		}
		dims := make([]uint64, 0, len(t.Shape))
		for i := len(t.Shape) - 1; i >= 1; i-- {
			dims = append(dims, t.Shape[i])
		}
		dims = append(dims, p.rows)
		if g == "token_embd" && len(dims) == 2 && dims[1] != uint64(len(j.voc.tokens)) {
			return fmt.Errorf("%w: %s has %d rows but the tokenizer has %d tokens", ErrInvalid, t.Name, dims[1], len(j.voc.tokens))
		}
		p.info = gguf.TensorInfo{Name: name, Type: typ, Dims: dims}
		if p.info.Size() < 0 {
			return fmt.Errorf("%w: tensor %q shape %v does not fit %s", ErrInvalid, t.Name, t.Shape, typ)
		}
		j.plans = append(j.plans, p)
	}
	if _, ok := seen["token_embd.weight"]; !ok {
		return fmt.Errorf("%w: no token embedding tensor among %d tensors (is this a %s checkpoint?)", ErrInvalid, len(j.ck.tensors), h.architecture())
	}
	for _, e := range j.meta.extra {
		j.plans = append(j.plans, plan{info: gguf.TensorInfo{Name: e.name, Type: gguf.TensorF32, Dims: []uint64{uint64(len(e.data))}}, data: e.data})
	}
	return nil
}

// Convert converts the checkpoint in dir and writes the GGUF to w,
// streaming: memory use does not depend on the model size.
func Convert(ctx context.Context, dir string, w io.Writer, opts Options) error {
	j, err := prepare(dir, opts)
	if err != nil {
		return err
	}
	defer j.ck.Close()
	infos := make([]gguf.TensorInfo, len(j.plans))
	for i, p := range j.plans {
		infos[i] = p.info
	}
	gw, err := gguf.NewWriter(w, gguf.Header{KV: j.meta.kv, Tensors: infos})
	if err != nil {
		return err
	}
	var done int64
	buf := make([]byte, chunkSize)
	out := make([]byte, 0, 2*chunkSize)
	for _, p := range j.plans {
		if err := ctx.Err(); err != nil {
			return err
		}
		if err := p.emit(ctx, gw, buf, out, func(n int) {
			done += int64(n)
			if opts.Progress != nil {
				opts.Progress(done, j.total)
			}
		}); err != nil {
			return fmt.Errorf("tensor %s: %w", p.info.Name, err)
		}
	}
	return gw.Close()
}

// ConvertFile converts the checkpoint in dir into the GGUF file path,
// atomically: it writes a temporary file beside path, checks it reads back
// as GGUF, and renames it into place.
func ConvertFile(ctx context.Context, dir, path string, opts Options) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), ".convert-*.gguf")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	bw := bufio.NewWriterSize(tmp, 1<<20)
	err = Convert(ctx, dir, bw, opts)
	if err == nil {
		err = bw.Flush()
	}
	if err == nil {
		err = tmp.Sync()
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return err
	}
	if _, err := gguf.ReadFile(tmp.Name()); err != nil {
		return fmt.Errorf("convert: written file does not read back: %w", err)
	}
	if err := os.Chmod(tmp.Name(), 0o644); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), path)
}

const chunkSize = 1 << 20

func elemSize(dtype string) int {
	if dtype == "F32" {
		return 4
	}
	return 2
}

func (p *plan) emit(ctx context.Context, w io.Writer, buf, out []byte, progress func(int)) error {
	if p.src == nil {
		out = out[:0]
		for _, f := range p.data {
			out = binary.LittleEndian.AppendUint32(out, math.Float32bits(f))
		}
		_, err := w.Write(out)
		progress(len(out))
		return err
	}
	es := elemSize(p.src.DType)
	rowBytes := int64(p.rowElems) * int64(es)
	total := int64(p.rows) * rowBytes
	src := io.NewSectionReader(p.src.file.f, p.src.begin, total)
	srcType := p.src.DType
	dstType := p.info.Type.String()
	if p.permute > 0 {
		// One head at a time: rows [h*hd, (h+1)*hd) are reordered so that
		// row 2i+k of the output is row k*hd/2+i of the input.
		hd := int64(p.rows) / int64(p.permute)
		block := make([]byte, hd*rowBytes)
		perm := make([]byte, hd*rowBytes)
		for h := 0; h < p.permute; h++ {
			if err := ctx.Err(); err != nil {
				return err
			}
			if _, err := io.ReadFull(src, block); err != nil {
				return fmt.Errorf("%w: reading %s: %v", ErrInvalid, p.src.Name, err)
			}
			half := hd / 2
			for i := int64(0); i < half; i++ {
				for k := int64(0); k < 2; k++ {
					from := (k*half + i) * rowBytes
					to := (2*i + k) * rowBytes
					copy(perm[to:to+rowBytes], block[from:from+rowBytes])
				}
			}
			o := convertElems(out[:0], perm, srcType, dstType, p.addOne)
			if _, err := w.Write(o); err != nil {
				return err
			}
			progress(len(o))
		}
		return nil
	}
	chunk := len(buf) / es * es
	// A reader goroutine fills buffers ahead while this one converts and
	// writes, so reading overlaps with converting and writing.
	type filled struct {
		b   []byte
		err error
	}
	const depth = 3
	free := make(chan []byte, depth)
	full := make(chan filled, depth)
	done := make(chan struct{})
	defer close(done)
	free <- buf[:chunk]
	for i := 1; i < depth; i++ {
		free <- make([]byte, chunk)
	}
	go func() {
		defer close(full)
		for left := total; left > 0; {
			var b []byte
			select {
			case b = <-free:
			case <-done:
				return
			}
			n := int(min(int64(chunk), left))
			_, err := io.ReadFull(src, b[:n])
			left -= int64(n)
			select {
			case full <- filled{b[:n], err}:
			case <-done:
				return
			}
			if err != nil {
				return
			}
		}
	}()
	for f := range full {
		if f.err != nil {
			return fmt.Errorf("%w: reading %s: %v", ErrInvalid, p.src.Name, f.err)
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		o := f.b // same type: the bytes pass through
		if srcType != dstType || p.addOne {
			o = convertElems(out[:0], f.b, srcType, dstType, p.addOne)
		}
		if _, err := w.Write(o); err != nil {
			return err
		}
		progress(len(o))
		free <- f.b[:cap(f.b)]
	}
	return nil
}

// littleEndian reports whether the host stores integers little endian, as
// GGUF and safetensors files do.
var littleEndian = func() bool {
	x := uint16(1)
	return *(*byte)(unsafe.Pointer(&x)) == 1
}()

var (
	tablesOnce sync.Once
	bf16ToF16  *[1 << 16]uint16 // bfloat16 bits -> half bits
	f16ToBF16  *[1 << 16]uint16 // half bits -> bfloat16 bits
)

func initTables() {
	bf16ToF16 = new([1 << 16]uint16)
	f16ToBF16 = new([1 << 16]uint16)
	for i := range bf16ToF16 {
		bf16ToF16[i] = gguf.F32ToF16(gguf.BF16ToF32(uint16(i)))
		f16ToBF16[i] = gguf.F32ToBF16(gguf.F16ToF32(uint16(i)))
	}
}

// bf16ToF16Fast converts BF16 to F16: values whose exponent fits a normal
// half convert exactly by rebiasing the exponent (BF16's 7 mantissa bits fit
// in F16's 10); the rest (tiny, huge, Inf, NaN) go through the table.
func bf16ToF16Fast(o, in []uint16, table *[1 << 16]uint16) {
	o = o[:len(in)]
	for i, x := range in {
		if e := x & 0x7f80; e >= 113<<7 && e <= 142<<7 {
			o[i] = x&0x8000 | (x&0x7fff-112<<7)<<3
		} else {
			o[i] = table[x]
		}
	}
}

// convertElems appends src (elements of srcType) converted to dstType,
// adding 1 to every value when addOne.
func convertElems(dst, src []byte, srcType, dstType string, addOne bool) []byte {
	le := binary.LittleEndian
	if srcType == dstType && !addOne {
		return append(dst, src...)
	}
	if !addOne && (srcType == "BF16" && dstType == "F16" || srcType == "F16" && dstType == "BF16") {
		tablesOnce.Do(initTables)
		table := bf16ToF16
		if srcType == "F16" {
			table = f16ToBF16
		}
		start := len(dst)
		n := len(src) / 2
		dst = append(dst, make([]byte, n*2)...)
		out := dst[start:]
		if n == 0 {
			return dst
		}
		if !littleEndian {
			for i := 0; i+1 < len(src); i += 2 {
				le.PutUint16(out[i:], table[le.Uint16(src[i:])])
			}
			return dst
		}
		// The host is little endian like the files: view the bytes as
		// uint16s and convert in parallel halves.
		in16 := unsafe.Slice((*uint16)(unsafe.Pointer(&src[0])), n)
		out16 := unsafe.Slice((*uint16)(unsafe.Pointer(&out[0])), n)
		parts := 1
		if n >= 1<<17 {
			parts = min(goruntime.GOMAXPROCS(0), 4)
		}
		var wg sync.WaitGroup
		for p := 0; p < parts; p++ {
			lo, hi := n*p/parts, n*(p+1)/parts
			wg.Go(func() {
				in := in16[lo:hi]
				o := out16[lo:hi][:len(in)]
				if srcType == "BF16" {
					bf16ToF16Fast(o, in, table)
					return
				}
				for i, x := range in {
					o[i] = table[x]
				}
			})
		}
		wg.Wait()
		return dst
	}
	es := elemSize(srcType)
	for i := 0; i+es <= len(src); i += es {
		var f float32
		switch srcType {
		case "F32":
			f = math.Float32frombits(le.Uint32(src[i:]))
		case "F16":
			f = gguf.F16ToF32(le.Uint16(src[i:]))
		case "BF16":
			f = gguf.BF16ToF32(le.Uint16(src[i:]))
		}
		if addOne {
			f++
		}
		switch dstType {
		case "F32":
			dst = le.AppendUint32(dst, math.Float32bits(f))
		case "F16":
			dst = le.AppendUint16(dst, gguf.F32ToF16(f))
		case "BF16":
			dst = le.AppendUint16(dst, gguf.F32ToBF16(f))
		}
	}
	return dst
}
