package build_test

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"syscall"
	"testing"
	"time"

	"github.com/olmhq/olm/blobstore"
	"github.com/olmhq/olm/build"
	"github.com/olmhq/olm/internal/testenv"
	"github.com/olmhq/olm/internal/testmodel"
	"github.com/olmhq/olm/modelfile"
	"github.com/olmhq/olm/oci"
	"github.com/olmhq/olm/quantize"
)

// Create2GB is a random F16 llama of about 0.95B parameters (1.9 GB).
var create2GB = testmodel.Spec{Name: "olm bench 2GB", Vocab: 32000, Embedding: 2048, Blocks: 16, FeedForward: 5632, Heads: 16, Seed: 3}

// benchModel generates (once, into the cache folder) and returns a model.
func benchModel(b *testing.B, name string, spec testmodel.Spec) string {
	b.Helper()
	dir := filepath.Join(testenv.CacheDir(), "bench")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		b.Fatal(err)
	}
	path := filepath.Join(dir, name)
	if _, err := os.Stat(path); err != nil {
		b.Logf("generating %s (%d parameters)", path, spec.Params())
		if err := testmodel.Generate(path, spec); err != nil {
			b.Fatal(err)
		}
	}
	return path
}

// timeIt runs fn n times and returns the best wall time.
func timeIt(b *testing.B, n int, fn func()) time.Duration {
	best := time.Duration(1<<63 - 1)
	for range n {
		start := time.Now()
		fn()
		best = min(best, time.Since(start))
	}
	return best
}

// BenchmarkCreate2GB creates a model FROM a 1.9 GB GGUF file into an empty
// store (copy: the default on a file system without reflinks; link:
// --link, hardlinking) and compares the best wall time with `sha256sum` of
// the same file, both with the file in the page cache. It reports the ratio
// and the disk the store added (MB of blocks not shared with the source).
func BenchmarkCreate2GB(b *testing.B) {
	src := benchModel(b, "create-2gb.gguf", create2GB)
	sha := timeIt(b, 3, func() {
		if out, err := exec.Command("sha256sum", src).CombinedOutput(); err != nil {
			b.Fatalf("sha256sum: %v %s", err, out)
		}
	})
	for _, mode := range []string{"copy", "link"} {
		b.Run(mode, func(b *testing.B) {
			// Hardlinking a source makes it read-only: link a private
			// hardlink of the cached model, never the cached file's name.
			dir := b.TempDir()
			from := filepath.Join(dir, "model.gguf")
			if err := os.Link(src, from); err != nil {
				b.Skipf("cannot link the benchmark model into %s: %v", dir, err)
			}
			mf := &modelfile.Modelfile{Commands: []modelfile.Command{{Instruction: modelfile.From, Value: from}}}
			var best time.Duration = 1<<63 - 1
			var added int64
			for i := 0; b.Loop(); i++ {
				b.StopTimer()
				root := filepath.Join(dir, "store")
				os.RemoveAll(root)
				s, err := blobstore.Open(root, blobstore.Options{})
				if err != nil {
					b.Fatal(err)
				}
				bl := &build.Builder{Store: s, LinkFiles: mode == "link"}
				b.StartTimer()
				start := time.Now()
				if _, err := bl.Build(context.Background(), build.Request{Modelfile: mf, Tags: []string{"bench"}}, nil); err != nil {
					b.Fatal(err)
				}
				best = min(best, time.Since(start))
				b.StopTimer()
				added = diskAdded(b, root, from)
				b.StartTimer()
			}
			b.ReportMetric(best.Seconds(), "best-s")
			b.ReportMetric(sha.Seconds(), "sha256sum-s")
			b.ReportMetric(best.Seconds()/sha.Seconds(), "x-sha256sum")
			b.ReportMetric(float64(added)/1e6, "MB-added")
		})
	}
}

// diskAdded returns the bytes of disk the files under root occupy, not
// counting files that share the source's inode (hardlinks).
func diskAdded(b *testing.B, root, source string) int64 {
	var srcIno uint64
	if fi, err := os.Stat(source); err == nil {
		srcIno = fi.Sys().(*syscall.Stat_t).Ino
	}
	var n int64
	filepath.Walk(root, func(p string, fi os.FileInfo, err error) error {
		if err != nil || fi.IsDir() {
			return nil
		}
		st := fi.Sys().(*syscall.Stat_t)
		if st.Ino != srcIno {
			n += st.Blocks * 512
		}
		return nil
	})
	return n
}

// BenchmarkQuantizeQ4KM quantizes a generated ~106M-parameter F16 llama to
// Q4_K_M through olm's worker process and compares the best wall time with
// llama.cpp's own llama-quantize of the same release on the same file.
//
// OLM_BENCH_LLAMA_QUANTIZE names the llama-quantize binary when the test
// binary runs away from its checkout (on a benchmark machine).
func BenchmarkQuantizeQ4KM(b *testing.B) {
	tool := os.Getenv("OLM_BENCH_LLAMA_QUANTIZE")
	if tool == "" {
		tool = filepath.Join(testenv.LlamaDir(b), "bin", "llama-quantize")
	}
	src := benchModel(b, "bench-llama-f16.gguf", testmodel.BenchLlama)
	dir := b.TempDir()
	q := realQuantizer(b)
	// Runs alternate between the two, so load from elsewhere hits both
	// alike; wall time (best of) and CPU time of the child processes (mean,
	// from RUSAGE_CHILDREN, steadier on a busy machine) are compared.
	var best, ref time.Duration = 1<<63 - 1, 1<<63 - 1
	var cpu, refCPU time.Duration
	n := 0
	for b.Loop() {
		b.StopTimer()
		out := filepath.Join(dir, "ref.gguf")
		c0 := childCPU()
		start := time.Now()
		if o, err := exec.Command(tool, src, out, "Q4_K_M").CombinedOutput(); err != nil {
			b.Fatalf("llama-quantize: %v\n%s", err, o)
		}
		ref = min(ref, time.Since(start))
		refCPU += childCPU() - c0
		os.Remove(out)
		b.StartTimer()

		out = filepath.Join(dir, "olm.gguf")
		c0 = childCPU()
		start = time.Now()
		if err := q.Quantize(context.Background(), src, out, quantize.Options{Type: "q4_K_M"}); err != nil {
			b.Fatal(err)
		}
		best = min(best, time.Since(start))
		cpu += childCPU() - c0
		os.Remove(out)
		n++
	}
	b.ReportMetric(best.Seconds(), "best-s")
	b.ReportMetric(ref.Seconds(), "llama-quantize-s")
	b.ReportMetric(best.Seconds()/ref.Seconds(), "x-llama-quantize")
	b.ReportMetric(cpu.Seconds()/float64(n), "cpu-s")
	b.ReportMetric(refCPU.Seconds()/float64(n), "llama-quantize-cpu-s")
	b.ReportMetric(cpu.Seconds()/refCPU.Seconds(), "x-llama-quantize-cpu")
}

// childCPU returns the user+system CPU time of waited-for child processes.
func childCPU() time.Duration {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_CHILDREN, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// BenchmarkUnpackZstd unpacks a 212 MB GGUF (BenchLlama) from a tar+zstd
// ModelPack layer (zstd level 3, the command's default) into the store, as
// the first run of a pulled model does, and compares the best wall time
// with `zstd -dc LAYER | tar -xO > FILE; sync FILE` on the same layer
// (decompression and writing alone; olm also checks the size and the GGUF
// header and syncs). It reports MB/s of GGUF, the ratio, and the bytes the
// Go heap allocated per unpacking (bounded by the decoder's window and a
// copy buffer, not by the file).
func BenchmarkUnpackZstd(b *testing.B) {
	for _, tool := range []string{"zstd", "tar"} {
		if _, err := exec.LookPath(tool); err != nil {
			b.Skipf("the %s command is needed for the comparison", tool)
		}
	}
	src := benchModel(b, "bench-llama-f16.gguf", testmodel.BenchLlama)
	fi, err := os.Stat(src)
	if err != nil {
		b.Fatal(err)
	}
	dir := b.TempDir()
	layer := filepath.Join(dir, "model.tar.zst")
	cmd := exec.Command("sh", "-c", `tar -cf - -C "$1" --transform s/.*/model.gguf/ "$2" | zstd -q -3 -o "$3"`, "sh", filepath.Dir(src), filepath.Base(src), layer)
	if out, err := cmd.CombinedOutput(); err != nil {
		b.Fatalf("tar | zstd: %v %s", err, out)
	}
	archive, err := os.ReadFile(layer)
	if err != nil {
		b.Fatal(err)
	}
	s, err := blobstore.Open(filepath.Join(dir, "store"), blobstore.Options{})
	if err != nil {
		b.Fatal(err)
	}
	ref := "example.com/bench/zstd:v1"
	storeModelKit(b, s, ref, oci.MediaTypeModelPackWeightTarZstd, archive, "model.gguf")
	archive = nil
	ctx := context.Background()
	m, _, err := build.LoadModel(ctx, s, ref)
	if err != nil {
		b.Fatal(err)
	}
	unpackDir := filepath.Join(s.Root(), build.UnpackDir)
	var alloc uint64
	olm := timeIt(b, 3, func() {
		os.RemoveAll(unpackDir)
		var before, after runtime.MemStats
		runtime.ReadMemStats(&before)
		if _, err := build.LayerPath(ctx, s, m.Weights[0]); err != nil {
			b.Fatal(err)
		}
		runtime.ReadMemStats(&after)
		alloc = after.TotalAlloc - before.TotalAlloc
	})
	out := filepath.Join(dir, "out.gguf")
	cli := timeIt(b, 3, func() {
		c := exec.Command("sh", "-c", `zstd -dc "$1" | tar -xOf - > "$2" && sync "$2"`, "sh", layer, out)
		if o, err := c.CombinedOutput(); err != nil {
			b.Fatalf("zstd -dc | tar: %v %s", err, o)
		}
	})
	b.ReportMetric(float64(fi.Size())/1e6/olm.Seconds(), "MB/s")
	b.ReportMetric(olm.Seconds()/cli.Seconds(), "x_cli")
	b.ReportMetric(float64(alloc)/1e6, "MB_alloc/op")
	b.Logf("olm %v, zstd -dc | tar -xO %v, GGUF %d MB, %.1f MB allocated per unpacking", olm, cli, fi.Size()>>20, float64(alloc)/1e6)
}
