package convert

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	goruntime "runtime"
	"runtime/debug"
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
	// No buffer here: the GGUF writer buffers the small writes and passes
	// the tensor data chunks through.
	err = Convert(ctx, dir, tmp, opts)
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
	if m := p.src.file.data; m != nil {
		return p.emitMapped(ctx, w, m, p.src.begin, total, buf, out, progress)
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
		switch {
		case srcType == dstType && !p.addOne:
		case elemSize(srcType) == 2 && elemSize(dstType) == 2 && !p.addOne:
			convert16(f.b, f.b, srcType) // BF16 <-> F16 in place: same size; memory, no fault
		default:
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

// Four BF16 lanes of a little-endian uint64, for bf16ToF16Words.
const (
	laneSign = 0x8000_8000_8000_8000
	laneMag  = 0x7fff_7fff_7fff_7fff
	// A BF16 magnitude m has a normal F16 form, exactly, when its biased
	// exponent is 113..142: 0x3880 <= m <= 0x477f. Adding laneLo sets a
	// lane's top bit iff m >= 0x3880; adding laneHi iff m >= 0x4780. Neither
	// sum carries out of its lane (m <= 0x7fff).
	laneLo     = 0x4780_4780_4780_4780 // 0x8000 - 0x3880
	laneHi     = 0x3880_3880_3880_3880 // 0x8000 - 0x4780
	laneRebias = 0x3800_3800_3800_3800 // (127-15) << 7
)

// bf16ToF16Words converts BF16 to F16; o and in may be the same slice.
// Eight values at a time, as two 64-bit words of four: when all eight
// exponents fit a normal half, each converts exactly by rebiasing its
// exponent and shifting (BF16's 7 mantissa bits fit in F16's 10), in a
// handful of 64-bit operations; otherwise (tiny, huge, Inf, NaN) each of
// the eight goes through the table.
func bf16ToF16Words(o, in []uint16, table *[1 << 16]uint16) {
	o = o[:len(in)]
	n8 := len(in) / 8
	if n8 > 0 && (uintptr(unsafe.Pointer(&in[0]))|uintptr(unsafe.Pointer(&o[0])))%8 != 0 {
		n8 = 0 // not 64-bit aligned (never for olm's buffers): one at a time
	}
	if n8 > 0 {
		in64 := unsafe.Slice((*uint64)(unsafe.Pointer(&in[0])), 2*n8)
		o64 := unsafe.Slice((*uint64)(unsafe.Pointer(&o[0])), 2*n8)[:len(in64)]
		for i := 0; i+1 < len(in64); i += 2 {
			x, y := in64[i], in64[i+1]
			mx, my := x&laneMag, y&laneMag
			if (mx+laneLo)&(my+laneLo)&laneSign == laneSign && ((mx+laneHi)|(my+laneHi))&laneSign == 0 {
				// Lanes stay apart: every mag-rebias is below 0x0f80, so
				// the shift keeps it under 0x7c00, inside its lane.
				o64[i] = x&laneSign | (mx-laneRebias)<<3
				o64[i+1] = y&laneSign | (my-laneRebias)<<3
				continue
			}
			for j := 4 * i; j < 4*i+8; j++ {
				o[j] = table[in[j]]
			}
		}
	}
	for j := 8 * n8; j < len(in); j++ {
		o[j] = table[in[j]]
	}
}

// convertParts is the most goroutines one conversion uses.
const convertParts = 8

// convert16 converts n = len(src)/2 BF16 values to F16 or F16 to BF16
// (srcType says which) into out[:2n]; out may be src itself. Large inputs
// are split into contiguous ranges converted by up to GOMAXPROCS
// goroutines, each writing its own range of out, so the order is kept. A
// memory fault reading src (a mapped file truncated meanwhile) is returned
// as an error once every goroutine is done.
func convert16(out, src []byte, srcType string) error {
	tablesOnce.Do(initTables)
	table := bf16ToF16
	if srcType == "F16" {
		table = f16ToBF16
	}
	n := len(src) / 2
	if n == 0 {
		return nil
	}
	out = out[:2*n]
	if !littleEndian {
		le := binary.LittleEndian
		for i := 0; i < 2*n; i += 2 {
			le.PutUint16(out[i:], table[le.Uint16(src[i:])])
		}
		return nil
	}
	// The host is little endian like the files: view the bytes as uint16s.
	in16 := unsafe.Slice((*uint16)(unsafe.Pointer(&src[0])), n)
	out16 := unsafe.Slice((*uint16)(unsafe.Pointer(&out[0])), n)
	run := func(o, in []uint16) (err error) {
		defer debug.SetPanicOnFault(debug.SetPanicOnFault(true))
		defer faultError(&err, "tensor data")
		if srcType == "BF16" {
			bf16ToF16Words(o, in, table)
			return nil
		}
		o = o[:len(in)]
		for i, x := range in {
			o[i] = table[x]
		}
		return nil
	}
	parts := 1
	if n >= 1<<17 {
		parts = min(goruntime.GOMAXPROCS(0), convertParts)
	}
	if parts == 1 {
		return run(out16, in16)
	}
	var wg sync.WaitGroup
	errs := make([]error, parts)
	for p := 1; p < parts; p++ {
		// Ranges start at multiples of 8 values (16 bytes), so the 64-bit
		// views stay aligned as the buffers are.
		lo, hi := n*p/parts&^7, n*(p+1)/parts&^7
		if p == parts-1 {
			hi = n
		}
		wg.Go(func() { errs[p] = run(out16[lo:hi], in16[lo:hi]) })
	}
	errs[0] = run(out16[:n/parts&^7], in16[:n/parts&^7])
	wg.Wait()
	return errors.Join(errs...)
}

// convertElems appends src (elements of srcType) converted to dstType,
// adding 1 to every value when addOne.
func convertElems(dst, src []byte, srcType, dstType string, addOne bool) []byte {
	le := binary.LittleEndian
	if srcType == dstType && !addOne {
		return append(dst, src...)
	}
	if !addOne && (srcType == "BF16" && dstType == "F16" || srcType == "F16" && dstType == "BF16") {
		start := len(dst)
		dst = append(dst, make([]byte, len(src)/2*2)...)
		convert16(dst[start:], src, srcType) // src is memory: no fault to report
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
