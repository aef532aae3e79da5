package build

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/olmhq/olm/blobstore"
	"github.com/olmhq/olm/convert"
	"github.com/olmhq/olm/internal/gguf"
	"github.com/olmhq/olm/modelfile"
	"github.com/olmhq/olm/oci"
	"github.com/olmhq/olm/quantize"
	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// Store is what the builder needs of the local store; *blobstore.Store
// implements it.
type Store interface {
	// Exists reports whether the blob of desc is stored.
	Exists(ctx context.Context, desc ocispec.Descriptor) (bool, error)
	// Push stores a blob read from r, verifying its size and digest.
	Push(ctx context.Context, desc ocispec.Descriptor, r io.Reader) error
	// ImportFile stores the file at path as a blob, hashing it once and
	// linking it (reflink, then hardlink) where allowed, else copying.
	ImportFile(ctx context.Context, path string, opts blobstore.ImportOptions) (ocispec.Descriptor, blobstore.ImportMethod, error)
	// Hold keeps garbage collection away until release is called.
	Hold(ctx context.Context) (release func(), err error)
	// BlobPath returns the path of a stored blob (ErrNotFound-like error if absent).
	BlobPath(d digest.Digest) (string, error)
	// Manifest resolves ref (a tag or digest) and reads the manifest.
	Manifest(ctx context.Context, ref string) (ocispec.Descriptor, []byte, error)
	// ReadBlob reads a whole blob of at most max bytes.
	ReadBlob(ctx context.Context, d digest.Digest, max int64) ([]byte, error)
	// Tag points ref at the stored manifest desc.
	Tag(ctx context.Context, desc ocispec.Descriptor, ref string) error
}

// Puller fetches a model from its registry into the store. oci/transfer
// implements it; nil means FROM may name only local models.
type Puller interface {
	Pull(ctx context.Context, ref oci.Reference, progress func(Event)) error
}

// Converter turns a safetensors checkpoint folder into a GGUF file.
type Converter interface {
	// Check reports, without converting, whether dir can be converted.
	Check(dir string) error
	// Convert writes the GGUF to out, reporting bytes of tensor data done
	// out of total.
	Convert(ctx context.Context, dir, out string, progress func(done, total int64)) error
}

// SafetensorsConverter converts with olm's pure-Go converter (package
// convert); it is the Builder's default Converter.
type SafetensorsConverter struct {
	// Options are passed to convert.ConvertFile; Progress is set per call.
	Options convert.Options
}

// Check implements Converter with convert.Detect.
func (c SafetensorsConverter) Check(dir string) error {
	_, err := convert.Detect(dir)
	return err
}

// Convert implements Converter.
func (c SafetensorsConverter) Convert(ctx context.Context, dir, out string, progress func(done, total int64)) error {
	opts := c.Options
	opts.Progress = progress
	return convert.ConvertFile(ctx, dir, out, opts)
}

// Quantizer quantizes a GGUF file; *quantize.Quantizer implements it.
type Quantizer interface {
	CheckType(typ string) (string, error)
	Quantize(ctx context.Context, in, out string, opts quantize.Options) error
}

// Event is one status update of a build, shaped like Ollama's progress
// responses: Status alone, or with Digest/Total/Completed for long steps.
type Event struct {
	Status    string `json:"status"`
	Digest    string `json:"digest,omitempty"`
	Total     int64  `json:"total,omitempty"`
	Completed int64  `json:"completed,omitempty"`
}

// Builder builds models into a store. Store is required; the other fields
// are optional capabilities. A Builder is safe for concurrent use if its
// parts are.
type Builder struct {
	Store Store
	// Naming parses model names (its zero value uses registry.ollama.ai).
	Naming oci.Naming
	// Puller pulls FROM references that are not in the store; nil: none.
	Puller Puller
	// Converter converts FROM safetensors folders; nil means
	// SafetensorsConverter{}.
	Converter Converter
	// Quantizer runs --quantize; nil: quantization is refused.
	Quantizer Quantizer
	// LinkFiles lets the store hardlink users' writable GGUF files when the
	// file system cannot reflink them, instead of copying: no second copy on
	// disk, but the file must never be modified in place afterwards (the
	// blob would be corrupt). Default false: copy.
	LinkFiles bool
	// TempDir holds intermediate files (conversion and quantization
	// outputs). Put it on the store's file system so that Import links
	// them instead of copying. "" means os.TempDir().
	TempDir string
}

// Request is one build.
type Request struct {
	// Modelfile is the recipe. Required unless Files is set, in which case
	// it must have no FROM (the files are the model).
	Modelfile *modelfile.Modelfile
	// Dir is the folder relative FROM and ADAPTER paths resolve against
	// (the Modelfile's folder); "" is the current directory.
	Dir string
	// Home is the folder "~" expands to; "" leaves "~" paths unexpanded.
	Home string
	// Tags are the names to tag the result with (at least one); each is
	// parsed with Builder.Naming and stored as its full reference.
	Tags []string
	// Files are weights already in the store, by file name, as /api/create
	// gives them: GGUF files (weights, split parts, projectors) or a
	// safetensors checkpoint (converted through the Converter).
	Files map[string]digest.Digest
	// Adapters are LoRA adapters already in the store, by file name.
	Adapters map[string]digest.Digest
	// Quantize is the target type ("q4_K_M"); "" keeps the weights as they are.
	Quantize string
	// Format is the manifest format; "" means oci.FormatModelPack.
	Format oci.Format
	// Created is the creation time written in the manifest; zero means
	// oci.ReproducibleTime, so builds are reproducible.
	Created time.Time
	// Labels are added as manifest annotations (ModelPack and Docker formats).
	Labels map[string]string
}

// Result describes a finished build.
type Result struct {
	Manifest ocispec.Descriptor // the stored manifest
	Model    *oci.Model         // its model view
	Details  Details            // what its GGUF says
	Tags     []string           // the full references it was tagged with
}

// weightsFile is a GGUF file on disk to become a layer.
type weightsFile struct {
	path     string
	name     string // file name for split parts; "" for the default
	header   *gguf.File
	existing *oci.Layer // set when the file is already a stored blob
}

// plan is everything resolved before the first write.
type plan struct {
	base         *oci.Model // FROM model, or nil
	weights      []weightsFile
	projectors   []weightsFile
	adapters     []weightsFile
	safetensors  string // a folder to convert, or ""
	quantizeType string
	params       modelfile.Parameters
	tmp          string // private temporary folder
}

// Build runs req and reports progress to fn (which may be nil). On success
// the model is stored and tagged; see the package doc for what happens on
// failure.
func (b *Builder) Build(ctx context.Context, req Request, fn func(Event)) (*Result, error) {
	emit := func(e Event) {
		if fn != nil {
			fn(e)
		}
	}
	if b.Store == nil {
		return nil, fmt.Errorf("%w: the builder has no store", ErrInvalidRequest)
	}
	emit(Event{Status: "parsing modelfile"})
	tags, err := b.checkRequest(&req)
	if err != nil {
		return nil, err
	}
	release, err := b.Store.Hold(ctx)
	if err != nil {
		return nil, err
	}
	defer release()
	p, err := b.resolve(ctx, &req, emit)
	defer func() {
		if p != nil && p.tmp != "" {
			os.RemoveAll(p.tmp)
		}
	}()
	if err != nil {
		return nil, err
	}
	return b.write(ctx, &req, p, tags, emit)
}

func (b *Builder) checkRequest(req *Request) ([]string, error) {
	mf := req.Modelfile
	if mf == nil {
		mf = &modelfile.Modelfile{}
		req.Modelfile = mf
	}
	if len(req.Files) > 0 {
		if len(mf.Froms()) > 0 {
			return nil, fmt.Errorf("%w: give either FROM or files, not both", ErrInvalidRequest)
		}
		// Validate everything but the FROM.
		withFrom := &modelfile.Modelfile{Commands: append([]modelfile.Command{{Instruction: modelfile.From, Value: "files"}}, mf.Commands...)}
		if err := withFrom.Validate(); err != nil {
			return nil, err
		}
	} else if err := mf.Validate(); err != nil {
		return nil, err
	}
	if len(req.Tags) == 0 {
		return nil, fmt.Errorf("%w: no name to tag the model with", ErrInvalidRequest)
	}
	var tags []string
	for _, t := range req.Tags {
		ref, err := b.Naming.Parse(t)
		if err != nil {
			return nil, fmt.Errorf("%w: %w", ErrInvalidRequest, err)
		}
		if ref.Digest != "" {
			return nil, fmt.Errorf("%w: cannot tag %q: a name to build must have a tag, not a digest", ErrInvalidRequest, t)
		}
		tags = append(tags, ref.String())
	}
	switch req.Format {
	case "":
		req.Format = oci.FormatModelPack
	case oci.FormatModelPack, oci.FormatOllama, oci.FormatDocker:
	default:
		return nil, fmt.Errorf("%w: format %q: expected modelpack, ollama or docker", ErrInvalidRequest, req.Format)
	}
	for k := range req.Labels {
		if k == "" {
			return nil, fmt.Errorf("%w: a label needs a key", ErrInvalidRequest)
		}
	}
	return tags, nil
}

// resolve checks every input and decides what to write, without writing
// to the store.
func (b *Builder) resolve(ctx context.Context, req *Request, emit func(Event)) (*plan, error) {
	mf := req.Modelfile
	p := &plan{}
	var err error
	if p.params, err = mf.Parameters(); err != nil {
		return nil, err
	}
	if req.Quantize != "" {
		if b.Quantizer == nil {
			return nil, fmt.Errorf("%w: quantization is not available in this build of olm", ErrUnsupported)
		}
		if p.quantizeType, err = b.Quantizer.CheckType(req.Quantize); err != nil {
			return nil, err
		}
	}
	if len(req.Files) > 0 {
		if err := b.resolveFiles(ctx, req, p, emit); err != nil {
			return p, err
		}
	}
	for i, from := range mf.Froms() {
		path := modelfile.ResolvePath(req.Dir, req.Home, from)
		if req.Home == "" && strings.HasPrefix(from, "~") {
			path = from
		}
		fi, statErr := os.Stat(path)
		switch {
		case statErr == nil && fi.IsDir():
			if err := b.resolveDir(path, p, emit); err != nil {
				return p, err
			}
		case statErr == nil:
			emit(Event{Status: "parsing GGUF"})
			wf, err := readGGUF(path)
			if err != nil {
				return p, err
			}
			p.addGGUF(wf)
		case modelfile.IsPath(from) || !errors.Is(statErr, os.ErrNotExist):
			return p, fmt.Errorf("%w: FROM %s: %s does not exist (a relative path is relative to the Modelfile's folder)", ErrNotFound, from, path)
		case i > 0:
			return p, fmt.Errorf("%w: FROM %s: only the first FROM may name a model; later ones add GGUF files (projectors, split parts)", ErrInvalidRequest, from)
		default:
			ref, err := b.Naming.Parse(from)
			if err != nil {
				return p, fmt.Errorf("%w: FROM %s is neither an existing file nor a model name: %w", ErrNotFound, from, err)
			}
			if p.base, err = b.loadBase(ctx, ref, emit); err != nil {
				return p, err
			}
		}
	}
	for _, a := range mf.Adapters() {
		path := modelfile.ResolvePath(req.Dir, req.Home, a)
		fi, err := os.Stat(path)
		if err != nil {
			return p, fmt.Errorf("%w: ADAPTER %s: %s does not exist", ErrNotFound, a, path)
		}
		if fi.IsDir() {
			return p, fmt.Errorf("%w: ADAPTER %s is a folder; olm takes LoRA adapters as GGUF files (convert a safetensors adapter with llama.cpp's convert_lora_to_gguf.py)", ErrUnsupported, a)
		}
		wf, err := readGGUF(path)
		if err != nil {
			return p, err
		}
		p.adapters = append(p.adapters, wf)
	}
	if err := b.resolveAdapterFiles(req, p); err != nil {
		return p, err
	}
	if p.base == nil && len(p.weights) == 0 && p.safetensors == "" {
		return p, fmt.Errorf("%w: FROM names only projectors; add a FROM with the model's weights", ErrInvalidRequest)
	}
	if (p.base != nil || p.safetensors != "") && len(p.weights) > 0 {
		return p, fmt.Errorf("%w: FROM gives weights twice (a model or safetensors folder and a GGUF file)", ErrInvalidRequest)
	}
	if len(p.weights) > 1 {
		sortSplit(p.weights)
		for _, w := range p.weights {
			if !splitPart.MatchString(w.name) {
				return p, fmt.Errorf("%w: several weights files (%s, ...); FROM takes one model, or the parts of a split GGUF named *-0000N-of-0000M.gguf", ErrInvalidRequest, w.name)
			}
		}
	}
	if p.quantizeType != "" {
		if err := b.checkQuantize(ctx, p); err != nil {
			return p, err
		}
	}
	if p.safetensors != "" {
		emit(Event{Status: "parsing safetensors"})
		if err := b.converter().Check(p.safetensors); err != nil {
			return p, fmt.Errorf("%w: FROM %s: %w", ErrInvalidWeights, p.safetensors, err)
		}
	}
	return p, nil
}

func (p *plan) addGGUF(wf weightsFile) {
	if isProjector(wf.header, wf.path) {
		p.projectors = append(p.projectors, wf)
	} else {
		p.weights = append(p.weights, wf)
	}
}

// resolveDir takes a folder of GGUF files or a safetensors checkpoint.
func (b *Builder) resolveDir(dir string, p *plan, emit func(Event)) error {
	ggufs, _ := filepath.Glob(filepath.Join(dir, "*.gguf"))
	sts, _ := filepath.Glob(filepath.Join(dir, "*.safetensors"))
	switch {
	case len(sts) > 0:
		if p.safetensors != "" {
			return fmt.Errorf("%w: two safetensors folders", ErrInvalidRequest)
		}
		if _, err := os.Stat(filepath.Join(dir, "config.json")); err != nil {
			return fmt.Errorf("%w: %s has safetensors files but no config.json", ErrInvalidWeights, dir)
		}
		p.safetensors = dir
		return nil
	case len(ggufs) > 0:
		sort.Strings(ggufs)
		emit(Event{Status: "parsing GGUF"})
		for _, g := range ggufs {
			wf, err := readGGUF(g)
			if err != nil {
				return err
			}
			if len(ggufs) > 1 {
				wf.name = filepath.Base(g)
			}
			p.addGGUF(wf)
		}
		return nil
	}
	return fmt.Errorf("%w: %s holds no *.gguf or *.safetensors files", ErrNotFound, dir)
}

func readGGUF(path string) (weightsFile, error) {
	h, err := gguf.ReadFile(path)
	if err != nil {
		if errors.Is(err, gguf.ErrNotGGUF) {
			return weightsFile{}, fmt.Errorf("%w: %s is not a GGUF file (FROM takes a GGUF file, a safetensors folder or a model name): %w", ErrInvalidWeights, path, err)
		}
		return weightsFile{}, fmt.Errorf("%w: %w", ErrInvalidWeights, err)
	}
	return weightsFile{path: path, header: h}, nil
}

var splitPart = regexp.MustCompile(`-(\d{5})-of-(\d{5})\.gguf$`)

// sortSplit orders split GGUF parts and names them; files that are not
// parts of one split model are an error later (weights twice).
func sortSplit(ws []weightsFile) {
	sort.SliceStable(ws, func(i, j int) bool { return filepath.Base(ws[i].path) < filepath.Base(ws[j].path) })
	for i := range ws {
		if ws[i].name == "" {
			ws[i].name = filepath.Base(ws[i].path)
		}
	}
}

func (b *Builder) resolveFiles(ctx context.Context, req *Request, p *plan, emit func(Event)) error {
	names := slices.Sorted(maps.Keys(req.Files))
	var st []string
	for _, name := range names {
		d := req.Files[name]
		if err := oci.ValidateDigest(d); err != nil {
			return fmt.Errorf("%w: file %s: %w", ErrInvalidRequest, name, err)
		}
		if filepath.Base(name) != name || name == "." || name == ".." {
			return fmt.Errorf("%w: file name %q must be a plain name", ErrInvalidRequest, name)
		}
		path, err := b.Store.BlobPath(d)
		if err != nil {
			return fmt.Errorf("%w: file %s: blob %s is not in the store (upload it with /api/blobs first): %w", ErrNotFound, name, d, err)
		}
		if strings.HasSuffix(name, ".safetensors") || strings.HasSuffix(name, ".json") || name == "tokenizer.model" || strings.HasSuffix(name, ".jinja") {
			st = append(st, name)
			continue
		}
		emit(Event{Status: "parsing GGUF"})
		wf, err := readGGUF(path)
		if err != nil {
			return fmt.Errorf("file %s: %w", name, err)
		}
		fi, err := os.Stat(path)
		if err != nil {
			return err
		}
		wf.existing = &oci.Layer{Digest: d, Size: fi.Size()}
		if len(req.Files) > 1 && splitPart.MatchString(name) {
			wf.name = name
		}
		p.addGGUF(wf)
	}
	if len(st) > 0 {
		// Lay the checkpoint out as a folder of links to the blobs.
		if err := p.mkTemp(b.TempDir); err != nil {
			return err
		}
		dir := filepath.Join(p.tmp, "checkpoint")
		if err := os.Mkdir(dir, 0o755); err != nil {
			return err
		}
		for _, name := range st {
			path, _ := b.Store.BlobPath(req.Files[name])
			if err := os.Symlink(path, filepath.Join(dir, name)); err != nil {
				return err
			}
		}
		if err := b.resolveDir(dir, p, emit); err != nil {
			return err
		}
	}
	return nil
}

func (b *Builder) resolveAdapterFiles(req *Request, p *plan) error {
	for _, name := range slices.Sorted(maps.Keys(req.Adapters)) {
		d := req.Adapters[name]
		if err := oci.ValidateDigest(d); err != nil {
			return fmt.Errorf("%w: adapter %s: %w", ErrInvalidRequest, name, err)
		}
		path, err := b.Store.BlobPath(d)
		if err != nil {
			return fmt.Errorf("%w: adapter %s: blob %s is not in the store: %w", ErrNotFound, name, d, err)
		}
		wf, err := readGGUF(path)
		if err != nil {
			return fmt.Errorf("adapter %s: %w", name, err)
		}
		fi, err := os.Stat(path)
		if err != nil {
			return err
		}
		wf.existing = &oci.Layer{Digest: d, Size: fi.Size()}
		p.adapters = append(p.adapters, wf)
	}
	return nil
}

func (b *Builder) converter() Converter {
	if b.Converter == nil {
		return SafetensorsConverter{}
	}
	return b.Converter
}

// owns reports whether path is in the plan's private temporary folder
// (a conversion or quantization output).
func (p *plan) owns(path string) bool {
	return p.tmp != "" && strings.HasPrefix(path, p.tmp+string(filepath.Separator))
}

func (p *plan) mkTemp(dir string) error {
	if p.tmp != "" {
		return nil
	}
	if dir != "" {
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return err
		}
	}
	t, err := os.MkdirTemp(dir, ".olm-build-*")
	if err != nil {
		return err
	}
	p.tmp = t
	return nil
}

// loadBase finds a model in the store, pulling it when it is not there.
func (b *Builder) loadBase(ctx context.Context, ref oci.Reference, emit func(Event)) (*oci.Model, error) {
	name := ref.String()
	m, _, err := LoadModel(ctx, b.Store, name)
	if err == nil {
		return m, nil
	}
	if b.Puller == nil {
		return nil, fmt.Errorf("%w: FROM %s: no such local model, and no registry access to pull it: %w", ErrNotFound, b.Naming.Short(ref), err)
	}
	emit(Event{Status: "pulling " + b.Naming.Short(ref)})
	if perr := b.Puller.Pull(ctx, ref, emit); perr != nil {
		return nil, fmt.Errorf("%w: FROM %s: not in the store, and pulling it failed: %w", ErrNotFound, b.Naming.Short(ref), perr)
	}
	m, _, err = LoadModel(ctx, b.Store, name)
	if err != nil {
		return nil, fmt.Errorf("FROM %s: %w", b.Naming.Short(ref), err)
	}
	return m, nil
}

// LoadModel reads the model tagged ref (a full reference or a digest) from
// the store, with its small layers' contents.
func LoadModel(ctx context.Context, s Store, ref string) (*oci.Model, ocispec.Descriptor, error) {
	desc, man, err := s.Manifest(ctx, ref)
	if err != nil {
		return nil, desc, err
	}
	m, err := oci.ParseModel(ctx, man, func(ctx context.Context, d ocispec.Descriptor) ([]byte, error) {
		return s.ReadBlob(ctx, d.Digest, d.Size)
	})
	if err != nil {
		return nil, desc, err
	}
	return m, desc, nil
}

// checkQuantize refuses, before any work, what cannot be quantized.
func (b *Builder) checkQuantize(ctx context.Context, p *plan) error {
	switch {
	case p.safetensors != "":
		return nil // converted to F16/BF16 first
	case len(p.weights) > 1:
		return fmt.Errorf("%w: quantizing a split GGUF; merge it first (llama-gguf-split --merge)", ErrUnsupported)
	case len(p.weights) == 1:
		_, err := quantize.Check(p.weights[0].path)
		return err
	case p.base != nil:
		if len(p.base.Weights) > 1 {
			return fmt.Errorf("%w: quantizing a split GGUF model", ErrUnsupported)
		}
		path, err := LayerPath(ctx, b.Store, p.base.Weights[0])
		if err != nil {
			return err
		}
		_, err = quantize.Check(path)
		return err
	}
	return nil
}

// write converts, quantizes and stores everything, then tags.
func (b *Builder) write(ctx context.Context, req *Request, p *plan, tags []string, emit func(Event)) (*Result, error) {
	mf := req.Modelfile
	m := &oci.Model{}
	if p.base != nil {
		*m = *p.base
		m.Format = ""
	}

	// 1. Weights: convert and quantize into temporary files first.
	var weightPaths []string // GGUF files to import as weights, when not reusing base layers
	for _, w := range p.weights {
		weightPaths = append(weightPaths, w.path)
	}
	if p.safetensors != "" {
		if err := p.mkTemp(b.TempDir); err != nil {
			return nil, err
		}
		emit(Event{Status: "converting model"})
		out := filepath.Join(p.tmp, "converted.gguf")
		if err := b.converter().Convert(ctx, p.safetensors, out, func(done, total int64) {
			emit(Event{Status: "converting model", Digest: "0", Total: total, Completed: done})
		}); err != nil {
			return nil, fmt.Errorf("convert %s: %w", p.safetensors, err)
		}
		wf, err := readGGUF(out)
		if err != nil {
			return nil, fmt.Errorf("the converted model is invalid: %w", err)
		}
		p.weights = []weightsFile{wf}
		weightPaths = []string{out}
	}
	if p.quantizeType != "" {
		in := ""
		if len(weightPaths) == 1 {
			in = weightPaths[0]
		} else {
			path, err := LayerPath(ctx, b.Store, m.Weights[0])
			if err != nil {
				return nil, err
			}
			in = path
		}
		if err := p.mkTemp(b.TempDir); err != nil {
			return nil, err
		}
		src, err := quantize.Check(in)
		if err != nil {
			return nil, err
		}
		out := filepath.Join(p.tmp, "quantized.gguf")
		status := fmt.Sprintf("quantizing %s model to %s", src.Quantization(), p.quantizeType)
		emit(Event{Status: status})
		err = b.Quantizer.Quantize(ctx, in, out, quantize.Options{Type: p.quantizeType, Progress: func(pr quantize.Progress) {
			emit(Event{Status: status, Digest: "0", Total: pr.Total, Completed: pr.Completed})
		}})
		if err != nil {
			return nil, err
		}
		emit(Event{Status: "verifying conversion"})
		wf, err := readGGUF(out)
		if err != nil {
			return nil, fmt.Errorf("the quantized model is invalid: %w", err)
		}
		p.weights = []weightsFile{wf}
		weightPaths = []string{out}
	}

	// 2. Store the files: weights, projectors, adapters.
	if len(weightPaths) > 0 {
		m.Weights = nil
		for i, path := range weightPaths {
			name := ""
			if i < len(p.weights) {
				name = p.weights[i].name
			}
			var existing *oci.Layer
			if i < len(p.weights) && p.weights[i].path == path {
				existing = p.weights[i].existing
			}
			l, err := b.importFile(ctx, path, existing, oci.MediaTypeOllamaModel, p.owns(path), emit)
			if err != nil {
				return nil, err
			}
			l.Filename = name
			m.Weights = append(m.Weights, l)
		}
	} else {
		for _, l := range m.Weights {
			emit(Event{Status: "using existing layer " + l.Digest.String()})
		}
	}
	if len(p.projectors) > 0 {
		m.Projectors = nil
		for _, pr := range p.projectors {
			l, err := b.importFile(ctx, pr.path, pr.existing, oci.MediaTypeOllamaProjector, false, emit)
			if err != nil {
				return nil, err
			}
			l.Filename = pr.name
			m.Projectors = append(m.Projectors, l)
		}
	}
	if len(p.adapters) > 0 {
		m.Adapters = nil
		for _, a := range p.adapters {
			l, err := b.importFile(ctx, a.path, a.existing, oci.MediaTypeOllamaAdapter, false, emit)
			if err != nil {
				return nil, err
			}
			m.Adapters = append(m.Adapters, l)
		}
	}

	// 3. Modelfile layers.
	var err error
	if t, ok := mf.Template(); ok {
		if m.Template, err = b.pushSmall(ctx, oci.MediaTypeOllamaTemplate, []byte(t), emit); err != nil {
			return nil, err
		}
	}
	if s, ok := mf.System(); ok {
		if m.System, err = b.pushSmall(ctx, oci.MediaTypeOllamaSystem, []byte(s), emit); err != nil {
			return nil, err
		}
	}
	params := p.params
	if m.Params != nil && len(m.Params.Data) > 0 {
		baseParams, err := decodeParams(m.Params.Data)
		if err != nil {
			return nil, fmt.Errorf("the base model's params layer: %w", err)
		}
		params = modelfile.Merge(baseParams, params)
	}
	if len(params) > 0 && (len(p.params) > 0 || m.Params == nil) {
		data, err := marshal(params)
		if err != nil {
			return nil, err
		}
		if m.Params, err = b.pushSmall(ctx, oci.MediaTypeOllamaParams, data, emit); err != nil {
			return nil, err
		}
	}
	if msgs := mf.Messages(); len(msgs) > 0 {
		data, err := marshal(msgs)
		if err != nil {
			return nil, err
		}
		if m.Messages, err = b.pushSmall(ctx, oci.MediaTypeOllamaMessages, data, emit); err != nil {
			return nil, err
		}
	}
	if lics := mf.Licenses(); len(lics) > 0 {
		m.Licenses = nil
		for _, lic := range lics {
			l, err := b.pushSmall(ctx, oci.MediaTypeOllamaLicense, []byte(lic), emit)
			if err != nil {
				return nil, err
			}
			m.Licenses = append(m.Licenses, *l)
		}
	}
	if len(m.Weights) == 0 {
		return nil, fmt.Errorf("%w: the model has no weights", ErrInvalidRequest)
	}

	// 4. Config from the GGUF header.
	details, err := b.details(ctx, m, p)
	if err != nil {
		return nil, err
	}
	m.Config = configOf(details, m.Config)
	if r, ok := mf.Requires(); ok {
		m.Config.Requires = strings.TrimPrefix(r, "v") // as Ollama stores it
	}

	// 5. Manifest and tags.
	created := req.Created
	if created.IsZero() {
		created = oci.ReproducibleTime
	}
	manifest, config, err := oci.BuildManifest(*m, req.Format, oci.BuildOptions{Created: created, Annotations: req.Labels})
	if err != nil {
		return nil, err
	}
	var man ocispec.Manifest
	if err := json.Unmarshal(manifest, &man); err != nil {
		return nil, err
	}
	if err := b.push(ctx, man.Config, config); err != nil {
		return nil, err
	}
	emit(Event{Status: "writing manifest"})
	desc := ocispec.Descriptor{MediaType: man.MediaType, Digest: digest.FromBytes(manifest), Size: int64(len(manifest)), ArtifactType: man.ArtifactType}
	if err := b.push(ctx, desc, manifest); err != nil {
		return nil, err
	}
	for _, t := range tags {
		if err := b.Store.Tag(ctx, desc, t); err != nil {
			return nil, fmt.Errorf("tag %s: %w", t, err)
		}
	}
	emit(Event{Status: "success"})
	m.Format = req.Format
	return &Result{Manifest: desc, Model: m, Details: details, Tags: tags}, nil
}

// importFile stores a file as a layer, or reuses the stored blob it already
// is. own marks the build's own temporary outputs, which may always be
// hardlinked; users' files are linked only with LinkFiles.
func (b *Builder) importFile(ctx context.Context, path string, existing *oci.Layer, mediaType string, own bool, emit func(Event)) (oci.Layer, error) {
	if existing != nil {
		emit(Event{Status: "using existing layer " + existing.Digest.String()})
		return oci.Layer{Digest: existing.Digest, Size: existing.Size, MediaType: mediaType}, nil
	}
	emit(Event{Status: "copying file " + filepath.Base(path)})
	link := b.LinkFiles || own
	desc, method, err := b.Store.ImportFile(ctx, path, blobstore.ImportOptions{MediaType: mediaType, LinkWritable: link})
	if err != nil {
		return oci.Layer{}, fmt.Errorf("import %s: %w", path, err)
	}
	if method == blobstore.ImportExisting {
		emit(Event{Status: "using existing layer " + desc.Digest.String()})
	} else {
		emit(Event{Status: "creating new layer " + desc.Digest.String()})
	}
	return oci.Layer{Digest: desc.Digest, Size: desc.Size, MediaType: mediaType}, nil
}

// pushSmall stores a small layer and reports whether it was new.
func (b *Builder) pushSmall(ctx context.Context, mediaType string, data []byte, emit func(Event)) (*oci.Layer, error) {
	desc := ocispec.Descriptor{MediaType: mediaType, Digest: digest.FromBytes(data), Size: int64(len(data))}
	ok, err := b.Store.Exists(ctx, desc)
	if err != nil {
		return nil, err
	}
	if ok {
		emit(Event{Status: "using existing layer " + desc.Digest.String()})
	} else {
		emit(Event{Status: "creating new layer " + desc.Digest.String()})
		if err := b.push(ctx, desc, data); err != nil {
			return nil, err
		}
	}
	return &oci.Layer{Digest: desc.Digest, Size: desc.Size, MediaType: mediaType, Data: data}, nil
}

func (b *Builder) push(ctx context.Context, desc ocispec.Descriptor, data []byte) error {
	if ok, err := b.Store.Exists(ctx, desc); err == nil && ok {
		return nil
	}
	err := b.Store.Push(ctx, desc, bytes.NewReader(data))
	if err != nil && !isAlreadyExists(err) {
		return err
	}
	return nil
}

func isAlreadyExists(err error) bool { return errors.Is(err, blobstore.ErrAlreadyExists) }

// marshal writes JSON without HTML escaping, so "<|eot_id|>" stays readable
// in params and messages layers.
func marshal(v any) ([]byte, error) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return nil, err
	}
	return bytes.TrimSuffix(buf.Bytes(), []byte("\n")), nil
}

// decodeParams reads a stored params layer. Known parameters get their
// types; names olm does not know and values of an unexpected type (a model
// made by a newer Ollama) are kept as they are, so they survive a rebuild.
func decodeParams(data []byte) (modelfile.Parameters, error) {
	var raw map[string]any
	if err := json.Unmarshal(data, &raw); err != nil {
		return nil, err
	}
	out := make(modelfile.Parameters, len(raw))
	for k, v := range raw {
		if p, err := modelfile.Normalize(map[string]any{k: v}); err == nil {
			for nk, nv := range p {
				out[nk] = nv
			}
			continue
		}
		out[k] = v
	}
	return out, nil
}

// details reads the GGUF headers of the final weights.
func (b *Builder) details(ctx context.Context, m *oci.Model, p *plan) (Details, error) {
	var parts []*gguf.File
	if len(p.weights) > 0 {
		for _, w := range p.weights {
			parts = append(parts, w.header)
		}
	} else {
		for _, l := range m.Weights {
			path, err := LayerPath(ctx, b.Store, l)
			if err != nil {
				return Details{}, err
			}
			f, err := gguf.ReadFile(path)
			if err != nil {
				return Details{}, fmt.Errorf("%w: the base model's weights: %w", ErrInvalidWeights, err)
			}
			parts = append(parts, f)
		}
	}
	var tmpl string
	if m.Template != nil {
		tmpl = string(m.Template.Data)
	}
	var chat string
	if m.ChatTemplate != nil {
		chat = string(m.ChatTemplate.Data)
	}
	return detailsOf(parts[0], parts, len(m.Projectors) > 0, tmpl, chat), nil
}
