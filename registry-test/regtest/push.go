package regtest

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"net/url"

	"github.com/opencontainers/go-digest"
)

// PushBlob uploads data to repo with the registry API (POST, then a
// monolithic PUT) and returns its digest. It lets tests build registry
// content, including manifests in formats olm does not write, without olm.
func (r *Registry) PushBlob(ctx context.Context, repo string, data []byte) (digest.Digest, error) {
	d := digest.SHA256.FromBytes(data)
	resp, err := r.Do(ctx, http.MethodPost, "/v2/"+repo+"/blobs/uploads/", nil, nil)
	if err != nil {
		return "", err
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusAccepted {
		return "", fmt.Errorf("%w: POST upload for %s: %s", ErrUpload, repo, resp.Status)
	}
	loc, err := url.Parse(resp.Header.Get("Location"))
	if err != nil {
		return "", fmt.Errorf("%w: bad Location: %v", ErrUpload, err)
	}
	base, _ := url.Parse(r.URL)
	loc = base.ResolveReference(loc)
	q := loc.Query()
	q.Set("digest", d.String())
	loc.RawQuery = q.Encode()
	req, err := http.NewRequestWithContext(ctx, http.MethodPut, loc.String(), bytes.NewReader(data))
	if err != nil {
		return "", err
	}
	req.Header.Set("Content-Type", "application/octet-stream")
	r.SetAuth(req)
	resp, err = r.Client().Do(req)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusCreated {
		body, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
		return "", fmt.Errorf("%w: PUT %s: %s %s", ErrUpload, d, resp.Status, body)
	}
	return d, nil
}

// PushManifest uploads a manifest to repo under ref (a tag or digest) with
// the given media type and returns its digest.
func (r *Registry) PushManifest(ctx context.Context, repo, ref, mediaType string, manifest []byte) (digest.Digest, error) {
	resp, err := r.Do(ctx, http.MethodPut, "/v2/"+repo+"/manifests/"+ref, manifest, http.Header{"Content-Type": {mediaType}})
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusCreated {
		body, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
		return "", fmt.Errorf("%w: PUT manifest %s:%s: %s %s", ErrUpload, repo, ref, resp.Status, body)
	}
	return digest.SHA256.FromBytes(manifest), nil
}

// GetManifest fetches a manifest and returns its bytes and media type.
func (r *Registry) GetManifest(ctx context.Context, repo, ref string, accept ...string) ([]byte, string, error) {
	if len(accept) == 0 {
		accept = []string{
			"application/vnd.oci.image.manifest.v1+json",
			"application/vnd.docker.distribution.manifest.v2+json",
			"application/vnd.oci.image.index.v1+json",
		}
	}
	resp, err := r.Do(ctx, http.MethodGet, "/v2/"+repo+"/manifests/"+ref, nil, http.Header{"Accept": accept})
	if err != nil {
		return nil, "", err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, "", fmt.Errorf("regtest: GET manifest %s:%s: %s", repo, ref, resp.Status)
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, 4<<20))
	return body, resp.Header.Get("Content-Type"), err
}
