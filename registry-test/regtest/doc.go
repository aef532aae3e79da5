// Package regtest runs a real distribution registry (the `registry` binary of
// distribution v3, built by scripts/tools.sh) on a loopback port for tests:
// plain HTTP, or TLS with a certificate authority generated in the test and
// htpasswd basic auth. It also gives the credentials and trust that oras and
// crane need (a DOCKER_CONFIG folder, a CA file), and an HTTP proxy that can
// cut a blob download after N bytes, for failure tests.
//
// Typical use:
//
//	reg := regtest.Start(t, regtest.Options{TLS: true, Auth: true})
//	client := reg.Client()                // trusts the test CA
//	cmd := exec.Command(oras, "push", reg.Ref("team/model", "v1"), "model.gguf")
//	cmd.Env = append(os.Environ(), reg.Env()...)
//
// Everything is torn down by t.Cleanup. A Registry is safe for concurrent use
// once Start has returned.
package regtest
