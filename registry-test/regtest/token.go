package regtest

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// The token service's identity in the registry's auth.token config.
const (
	tokenIssuer  = "olm-test-token"
	tokenService = "olm-test-registry"
)

// tokenServer is a minimal Docker registry token service
// (https://distribution.github.io/distribution/spec/auth/token/): it
// answers GET ?service=…&scope=… with a JWT signed by its own key (ES256,
// certificate in the x5c header, trusted by the registry's rootcertbundle).
// Valid basic credentials get the actions they ask for; anonymous clients
// get pull access only when anonymousPull is set; bad credentials get 401.
type tokenServer struct {
	key           *ecdsa.PrivateKey
	certDER       []byte
	user, pass    string
	anonymousPull bool
	ttl           time.Duration

	issued atomic.Int64
	mu     sync.Mutex
	scopes []string
}

func newTokenServer(user, pass string, anonymousPull bool, ttl time.Duration) (*tokenServer, []byte, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, err
	}
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(3),
		Subject:               pkix.Name{CommonName: tokenIssuer},
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.Add(24 * time.Hour),
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return nil, nil, err
	}
	if ttl <= 0 {
		ttl = 5 * time.Minute
	}
	ts := &tokenServer{key: key, certDER: der, user: user, pass: pass, anonymousPull: anonymousPull, ttl: ttl}
	return ts, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), nil
}

type accessClaim struct {
	Type    string   `json:"type"`
	Name    string   `json:"name"`
	Actions []string `json:"actions"`
}

// parseScope splits "repository:team/model:pull,push".
func parseScope(s string) (accessClaim, bool) {
	typ, rest, ok := strings.Cut(s, ":")
	if !ok {
		return accessClaim{}, false
	}
	i := strings.LastIndexByte(rest, ':')
	if i < 0 {
		return accessClaim{}, false
	}
	return accessClaim{Type: typ, Name: rest[:i], Actions: strings.Split(rest[i+1:], ",")}, true
}

func (ts *tokenServer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	user, pass, hasAuth := r.BasicAuth()
	authed := hasAuth && user == ts.user && pass == ts.pass
	if hasAuth && !authed || !hasAuth && !ts.anonymousPull {
		w.Header().Set("WWW-Authenticate", `Basic realm="olm-test-token"`)
		http.Error(w, `{"errors":[{"code":"UNAUTHORIZED","message":"bad credentials"}]}`, http.StatusUnauthorized)
		return
	}
	if r.URL.Query().Get("service") != tokenService {
		http.Error(w, "unknown service", http.StatusBadRequest)
		return
	}
	var access []accessClaim
	for _, s := range r.URL.Query()["scope"] {
		ts.mu.Lock()
		ts.scopes = append(ts.scopes, s)
		ts.mu.Unlock()
		// Several scopes may be joined by spaces in one parameter.
		for _, one := range strings.Fields(s) {
			a, ok := parseScope(one)
			if !ok {
				continue
			}
			if !authed {
				var pull []string
				for _, act := range a.Actions {
					if act == "pull" {
						pull = append(pull, act)
					}
				}
				a.Actions = pull
			}
			if len(a.Actions) > 0 {
				access = append(access, a)
			}
		}
	}
	subject := ""
	if authed {
		subject = user
	}
	now := time.Now()
	token, err := ts.sign(map[string]any{
		"iss": tokenIssuer, "sub": subject, "aud": tokenService,
		"exp": now.Add(ts.ttl).Unix(), "nbf": now.Add(-time.Second).Unix(), "iat": now.Unix(),
		"jti": randomHex(8), "access": access,
	})
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	ts.issued.Add(1)
	w.Header().Set("Content-Type", "application/json")
	json.NewEncoder(w).Encode(map[string]any{
		"token": token, "access_token": token,
		"expires_in": int(ts.ttl.Seconds()), "issued_at": now.UTC().Format(time.RFC3339),
	})
}

// sign makes a compact JWS (ES256) of the claims.
func (ts *tokenServer) sign(claims map[string]any) (string, error) {
	header, err := json.Marshal(map[string]any{
		"alg": "ES256", "typ": "JWT",
		"x5c": []string{base64.StdEncoding.EncodeToString(ts.certDER)},
	})
	if err != nil {
		return "", err
	}
	payload, err := json.Marshal(claims)
	if err != nil {
		return "", err
	}
	enc := base64.RawURLEncoding
	input := enc.EncodeToString(header) + "." + enc.EncodeToString(payload)
	sum := sha256.Sum256([]byte(input))
	r, s, err := ecdsa.Sign(rand.Reader, ts.key, sum[:])
	if err != nil {
		return "", err
	}
	sig := make([]byte, 64)
	r.FillBytes(sig[:32])
	s.FillBytes(sig[32:])
	return input + "." + enc.EncodeToString(sig), nil
}

// serve starts the token service on a loopback port, with TLS when certPEM
// and keyPEM are given, and returns its URL and a stop function.
func (ts *tokenServer) serve(certPEM, keyPEM []byte) (string, func(), error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", nil, err
	}
	scheme := "http"
	if certPEM != nil {
		pair, err := tls.X509KeyPair(certPEM, keyPEM)
		if err != nil {
			l.Close()
			return "", nil, err
		}
		l = tls.NewListener(l, &tls.Config{Certificates: []tls.Certificate{pair}, MinVersion: tls.VersionTLS12})
		scheme = "https"
	}
	srv := &http.Server{Handler: ts, ReadHeaderTimeout: 10 * time.Second}
	go srv.Serve(l)
	// The realm names the host "localhost", not an IP: clients such as
	// crane refuse token realms on loopback or private IP literals that
	// differ from the registry's host (an SSRF guard), as they should.
	port := l.Addr().(*net.TCPAddr).Port
	return fmt.Sprintf("%s://localhost:%d/token", scheme, port), func() { srv.Close() }, nil
}
