// Package testolm builds the olm binary and runs it as a user would
// (`olm create`, `olm serve`) for end-to-end tests and benchmarks, and
// starts other server processes (llama-server) the same way.
//
// Typical use:
//
//	func TestMain(m *testing.M) {
//		code := m.Run()
//		testolm.Cleanup()
//		os.Exit(code)
//	}
//
//	bin := testolm.Build(t)
//	env := []string{"OLM_HOME=" + t.TempDir()}
//	testolm.Create(t, bin, env, "tiny", "FROM "+testmodel.Tiny(t)+"\n")
//	url := testolm.Serve(t, bin, env, 30*time.Second)
//
// Processes are stopped by t.Cleanup. The functions are safe for concurrent
// use.
package testolm
