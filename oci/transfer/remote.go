package transfer

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"strings"
	"sync"
	"time"

	"oras.land/oras-go/v2/registry"
	"oras.land/oras-go/v2/registry/remote"
	"oras.land/oras-go/v2/registry/remote/auth"
	"oras.land/oras-go/v2/registry/remote/credentials"
	"oras.land/oras-go/v2/registry/remote/retry"

	"github.com/olmhq/olm/oci"
)

// RemoteOptions configures NewRepository. The zero value is anonymous,
// verified TLS (plain HTTP only to loopback registries that lack TLS).
type RemoteOptions struct {
	// Insecure allows plain HTTP to any registry and accepts TLS
	// certificates that do not verify (self-signed).
	Insecure bool
	// RootCAs, if set, are the CAs trusted for TLS instead of the system's.
	RootCAs *x509.CertPool
	// Credentials resolves credentials per registry (see DockerCredentials);
	// nil means anonymous.
	Credentials credentials.Store
	// UserAgent is sent with every request; empty means "olm".
	UserAgent string
	// Transport is the HTTP transport; nil means a tuned clone of
	// http.DefaultTransport honouring Insecure and RootCAs.
	Transport http.RoundTripper
}

// DockerCredentials opens the Docker config file at path (usually
// $DOCKER_CONFIG/config.json or ~/.docker/config.json; it may be missing),
// honouring credsStore and credHelpers. Put stores in the file unless a
// helper is configured.
func DockerCredentials(path string) (credentials.Store, error) {
	s, err := credentials.NewStore(path, credentials.StoreOptions{AllowPlaintextPut: true, DetectDefaultNativeStore: true})
	if err != nil {
		return nil, fmt.Errorf("transfer: docker config %s: %w", path, err)
	}
	return s, nil
}

// transport builds the HTTP transport of opts.
func (o RemoteOptions) transport() http.RoundTripper {
	if o.Transport != nil {
		return o.Transport
	}
	t := http.DefaultTransport.(*http.Transport).Clone()
	t.TLSClientConfig = &tls.Config{InsecureSkipVerify: o.Insecure, RootCAs: o.RootCAs} //nolint:gosec // only with --insecure
	t.MaxIdleConnsPerHost = 16
	t.ReadBufferSize = 256 << 10
	t.WriteBufferSize = 256 << 10
	t.ForceAttemptHTTP2 = false // HTTP/1.1: parallel ranges get their own TCP streams
	t.TLSNextProto = map[string]func(string, *tls.Conn) http.RoundTripper{}
	return t
}

// client returns the authenticating client of opts.
func (o RemoteOptions) client(host string) *auth.Client {
	ua := o.UserAgent
	if ua == "" {
		ua = "olm"
	}
	c := &auth.Client{
		Client: &http.Client{Transport: retry.NewTransport(o.transport())},
		Header: http.Header{"User-Agent": {ua}},
		Cache:  auth.NewCache(),
	}
	if o.Credentials != nil {
		c.Credential = credentials.Credential(o.Credentials)
	}
	// oras-go refuses bearer-token realms on loopback and link-local
	// addresses (a hostile registry could aim the token request there). A
	// registry on loopback may use its own token server on loopback; nothing
	// else may.
	if oci.IsLoopbackHost(host) {
		c.BlockedRealmPrefixes = []netip.Prefix{netip.MustParsePrefix("169.254.0.0/16"), netip.MustParsePrefix("fe80::/10")}
	}
	return c
}

// plainHosts caches which hosts were found to speak plain HTTP.
var plainHosts sync.Map // host → bool

// usePlainHTTP decides the scheme for host: HTTPS unless the host may use
// plain HTTP (loopback, or Insecure) and does not answer TLS.
func usePlainHTTP(ctx context.Context, host string, o RemoteOptions) bool {
	if !(o.Insecure || oci.IsLoopbackHost(host)) {
		return false
	}
	if v, ok := plainHosts.Load(host); ok {
		return v.(bool)
	}
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, "https://"+host+"/v2/", nil)
	plain := false
	resp, err := (&http.Client{Transport: o.transport()}).Do(req)
	if err == nil {
		resp.Body.Close()
	} else {
		var rhe tls.RecordHeaderError
		plain = errors.As(err, &rhe) || strings.Contains(err.Error(), "server gave HTTP response to HTTPS client") ||
			strings.Contains(err.Error(), "first record does not look like a TLS handshake")
		var oe *net.OpError
		if !plain && errors.As(err, &oe) && oe.Op == "dial" {
			return false // nothing listens; let the real request report it
		}
	}
	plainHosts.Store(host, plain)
	return plain
}

// NewRepository returns a client for the repository of ref.
func NewRepository(ctx context.Context, ref oci.Reference, opts RemoteOptions) (*remote.Repository, error) {
	if err := ref.Validate(); err != nil {
		return nil, err
	}
	repo := &remote.Repository{
		Client:    opts.client(ref.Registry),
		Reference: registry.Reference{Registry: ref.Registry, Repository: ref.Repository, Reference: ref.TagOrDigest()},
		PlainHTTP: usePlainHTTP(ctx, ref.Registry, opts),
		ManifestMediaTypes: []string{
			oci.MediaTypeOCIManifest, oci.MediaTypeDockerManifest, oci.MediaTypeOCIIndex, oci.MediaTypeDockerManifestList,
		},
		SkipReferrersGC: true,
	}
	return repo, nil
}

// Login checks cred against the registry host and stores it in creds (the
// Docker config file or its helper). A refused credential wraps ErrUnauthorized.
func Login(ctx context.Context, host string, cred auth.Credential, creds credentials.Store, opts RemoteOptions) error {
	reg, err := remote.NewRegistry(host)
	if err != nil {
		return fmt.Errorf("transfer: registry %q: %w", host, err)
	}
	opts.Credentials = nil
	c := opts.client(host)
	c.Credential = auth.StaticCredential(host, cred)
	reg.Client = c
	reg.PlainHTTP = usePlainHTTP(ctx, host, opts)
	if err := credentials.Login(ctx, creds, reg, cred); err != nil {
		if strings.Contains(err.Error(), "401") || strings.Contains(strings.ToLower(err.Error()), "unauthorized") {
			return fmt.Errorf("login to %s: %w: %v", host, ErrUnauthorized, err)
		}
		return fmt.Errorf("login to %s: %w", host, err)
	}
	return nil
}

// Logout removes the credentials of host from creds.
func Logout(ctx context.Context, host string, creds credentials.Store) error {
	return credentials.Logout(ctx, creds, host)
}
