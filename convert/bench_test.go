package convert

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/olmhq/olm/internal/gguf"
	"github.com/olmhq/olm/internal/testenv"
	"github.com/olmhq/olm/internal/testmodel"
)

// benchSpec is a llama checkpoint of about 540M parameters: 1.08 GB of BF16.
var benchSpec = synthConfig{hfArch: "LlamaForCausalLM", embd: 2048, heads: 16, kv: 16, ff: 5632, layers: 8, dtype: "BF16"}

// streamSafetensors writes a safetensors file of random BF16 tensors
// without holding them in memory.
func streamSafetensors(path string, names []string, shapes [][]uint64, seed uint64) error {
	type hdr struct {
		DType   string   `json:"dtype"`
		Shape   []uint64 `json:"shape"`
		Offsets [2]int64 `json:"data_offsets"`
	}
	h := map[string]any{}
	var off int64
	for i, n := range names {
		size := int64(2)
		for _, d := range shapes[i] {
			size *= int64(d)
		}
		h[n] = hdr{"BF16", shapes[i], [2]int64{off, off + size}}
		off += size
	}
	b, _ := json.Marshal(h)
	for len(b)%8 != 0 {
		b = append(b, ' ')
	}
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	defer f.Close()
	binary.Write(f, binary.LittleEndian, uint64(len(b)))
	f.Write(b)
	rng := rand.New(rand.NewPCG(seed, 1))
	buf := make([]byte, 1<<20)
	for left := off; left > 0; {
		n := min(int64(len(buf)), left)
		for i := 0; i < int(n); i += 2 {
			// small random bf16 values (sign, exponent near 2^-4)
			binary.LittleEndian.PutUint16(buf[i:], uint16(0x3d00|rng.Uint32()&0x80ff))
		}
		if _, err := f.Write(buf[:n]); err != nil {
			return err
		}
		left -= n
	}
	return f.Close()
}

// benchCheckpoint makes (once, in olm's cache) a ~1 GB llama checkpoint.
func benchCheckpoint(b *testing.B) string {
	dir := filepath.Join(testenv.CacheDir(), "bench", "convert-llama-540m")
	if _, err := os.Stat(filepath.Join(dir, "done")); err == nil {
		return dir
	}
	os.RemoveAll(dir)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		b.Fatal(err)
	}
	// The tokenizer: testmodel's 32000-token SentencePiece vocabulary.
	vp := filepath.Join(b.TempDir(), "vocab.gguf")
	if err := testmodel.Generate(vp, testmodel.Spec{Vocab: 32000, Embedding: 8, Blocks: 1, FeedForward: 8, Heads: 2}); err != nil {
		b.Fatal(err)
	}
	vg, err := gguf.ReadFile(vp)
	if err != nil {
		b.Fatal(err)
	}
	cfg := map[string]any{"rope_theta": 10000.0}
	hfTokenizer(b, vg, dir, cfg, 0)
	s := benchSpec
	E, F, V := uint64(s.embd), uint64(s.ff), uint64(32000)
	cfg["architectures"] = []string{s.hfArch}
	cfg["hidden_size"], cfg["num_attention_heads"], cfg["num_key_value_heads"] = E, s.heads, s.kv
	cfg["intermediate_size"], cfg["num_hidden_layers"], cfg["max_position_embeddings"] = F, s.layers, 4096
	cfg["rms_norm_eps"] = 1e-5
	writeJSON(b, filepath.Join(dir, "config.json"), cfg)
	wm := map[string]string{}
	for shard := 0; shard < 2; shard++ {
		var names []string
		var shapes [][]uint64
		add := func(n string, shape ...uint64) { names = append(names, n); shapes = append(shapes, shape) }
		if shard == 0 {
			add("model.embed_tokens.weight", V, E)
		} else {
			add("model.norm.weight", E)
			add("lm_head.weight", V, E)
		}
		for l := shard * s.layers / 2; l < (shard+1)*s.layers/2; l++ {
			p := fmt.Sprintf("model.layers.%d.", l)
			add(p+"input_layernorm.weight", E)
			add(p+"post_attention_layernorm.weight", E)
			for _, x := range []string{"q_proj", "k_proj", "v_proj", "o_proj"} {
				add(p+"self_attn."+x+".weight", E, E)
			}
			add(p+"mlp.gate_proj.weight", F, E)
			add(p+"mlp.up_proj.weight", F, E)
			add(p+"mlp.down_proj.weight", E, F)
		}
		file := fmt.Sprintf("model-%05d-of-00002.safetensors", shard+1)
		for _, n := range names {
			wm[n] = file
		}
		if err := streamSafetensors(filepath.Join(dir, file), names, shapes, uint64(shard)); err != nil {
			b.Fatal(err)
		}
	}
	writeJSON(b, filepath.Join(dir, "model.safetensors.index.json"), map[string]any{"weight_map": wm})
	os.WriteFile(filepath.Join(dir, "done"), nil, 0o644)
	return dir
}

func readAll(dir string) (int64, error) {
	names, err := weightFiles(dir)
	if err != nil {
		return 0, err
	}
	var n int64
	buf := make([]byte, 1<<20)
	for _, name := range names {
		f, err := os.Open(filepath.Join(dir, name))
		if err != nil {
			return 0, err
		}
		m, err := io.CopyBuffer(io.Discard, f, buf)
		f.Close()
		n += m
		if err != nil {
			return n, err
		}
	}
	return n, nil
}

// TestConvertHelperProcess is the child of BenchmarkConvert that converts
// in a fresh process so that its peak RSS can be measured.
func TestConvertHelperProcess(t *testing.T) {
	dir, out, dtype := os.Getenv("OLM_CONVERT_HELPER_DIR"), os.Getenv("OLM_CONVERT_HELPER_OUT"), os.Getenv("OLM_CONVERT_HELPER_DTYPE")
	if dir == "" {
		t.Skip("helper process for BenchmarkConvert")
	}
	if err := ConvertFile(context.Background(), dir, out, Options{DType: dtype}); err != nil {
		t.Fatal(err)
	}
}

// BenchmarkConvert converts a ~1 GB BF16 llama checkpoint (made once in
// olm's cache) and reports the time against reading the same bytes once
// (read-x, target ≤ 1.5), throughput, and the peak RSS of a child process
// doing the conversion (target < 300 MB, independent of model size).
// Run: go test -run XXX -bench Convert -benchtime 1x ./convert
func BenchmarkConvert(b *testing.B) {
	dir := benchCheckpoint(b)
	for _, dtype := range []string{"", "F16"} {
		name := "auto-bf16-passthrough"
		if dtype != "" {
			name = "bf16-to-" + dtype
		}
		b.Run(name, func(b *testing.B) {
			readAll(dir) // warm the page cache
			c0 := cpuTime()
			t0 := time.Now()
			n, err := readAll(dir)
			if err != nil {
				b.Fatal(err)
			}
			readTime := time.Since(t0)
			readCPU := cpuTime() - c0
			out := filepath.Join(b.TempDir(), "out.gguf")
			b.SetBytes(n)
			b.ResetTimer()
			var convTime time.Duration
			c1 := cpuTime()
			for i := 0; i < b.N; i++ {
				t1 := time.Now()
				if err := Convert(context.Background(), dir, io.Discard, Options{DType: dtype}); err != nil {
					b.Fatal(err)
				}
				convTime += time.Since(t1)
			}
			b.StopTimer()
			per := convTime / time.Duration(b.N)
			convCPU := (cpuTime() - c1) / time.Duration(b.N)
			b.ReportMetric(readCPU.Seconds(), "read-cpu-s")
			b.ReportMetric(convCPU.Seconds(), "conv-cpu-s")
			b.ReportMetric(float64(per)/float64(readTime), "read-x")
			b.ReportMetric(float64(n)/per.Seconds()/1e6, "conv-MB/s")
			b.ReportMetric(float64(n)/readTime.Seconds()/1e6, "read-MB/s")
			// End to end into a file (write, fsync, verify, rename) in a child process.
			cmd := exec.Command(os.Args[0], "-test.run=^TestConvertHelperProcess$")
			cmd.Env = append(os.Environ(), "OLM_CONVERT_HELPER_DIR="+dir, "OLM_CONVERT_HELPER_OUT="+out, "OLM_CONVERT_HELPER_DTYPE="+dtype)
			t2 := time.Now()
			if msg, err := cmd.CombinedOutput(); err != nil {
				b.Fatalf("helper: %v\n%s", err, msg)
			}
			b.ReportMetric(float64(time.Since(t2))/float64(readTime), "file-read-x")
			if ru, ok := cmd.ProcessState.SysUsage().(*syscall.Rusage); ok {
				b.ReportMetric(float64(ru.Maxrss)/1024, "peak-RSS-MB")
			}
		})
	}
}

// BenchmarkConvertElems measures the BF16 to F16 conversion of 1 MiB.
func BenchmarkConvertElems(b *testing.B) {
	src := make([]byte, 1<<20)
	rng := rand.New(rand.NewPCG(1, 2))
	for i := 0; i < len(src); i += 2 { // weights of magnitude 2^-12 .. 2^1
		binary.LittleEndian.PutUint16(src[i:], uint16(rng.IntN(0x4000-0x3980)+0x3980)|uint16(rng.IntN(2))<<15)
	}
	out := make([]byte, 0, 1<<20)
	b.SetBytes(int64(len(src)))
	for b.Loop() {
		convertElems(out[:0], src, "BF16", "F16", false)
	}
}

// cpuTime returns the CPU time (user and system) this process has used.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
