package kube

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"path"
	"sort"
	"strings"

	"github.com/google/go-containerregistry/pkg/authn"
)

// Secret types holding registry credentials, and the data key of each.
const (
	SecretTypeDockerConfigJSON = "kubernetes.io/dockerconfigjson"
	SecretTypeDockercfg        = "kubernetes.io/dockercfg"
	keyDockerConfigJSON        = ".dockerconfigjson"
	keyDockercfg               = ".dockercfg"
)

// dockerHub is the registry name go-containerregistry gives docker.io images.
const dockerHub = "index.docker.io"

// DockerConfig is the registry credentials of one pull secret, most specific
// entry first.
type DockerConfig []credential

var _ authn.Keychain = DockerConfig(nil)

type credential struct {
	host string // lower case, with port if any; may hold * globs per label
	path string // repository path prefix, "" for the whole registry
	auth authn.AuthConfig
}

type configEntry struct {
	Username      string `json:"username"`
	Password      string `json:"password"`
	Auth          string `json:"auth"`
	IdentityToken string `json:"identitytoken"`
	RegistryToken string `json:"registrytoken"`
}

// ParseDockerConfig reads a pull secret's credentials: typ is the Secret's
// type, data its decoded .dockerconfigjson or .dockercfg value.
func ParseDockerConfig(typ string, data []byte) (DockerConfig, error) {
	var entries map[string]configEntry
	switch typ {
	case SecretTypeDockerConfigJSON:
		var c struct {
			Auths map[string]configEntry `json:"auths"`
		}
		if err := json.Unmarshal(data, &c); err != nil {
			return nil, fmt.Errorf("data[%s]: expected a docker config.json: %w", keyDockerConfigJSON, err)
		}
		entries = c.Auths
	case SecretTypeDockercfg:
		if err := json.Unmarshal(data, &entries); err != nil {
			return nil, fmt.Errorf("data[%s]: expected a legacy .dockercfg object: %w", keyDockercfg, err)
		}
	default:
		return nil, fmt.Errorf("type: %q holds no registry credentials (expected %s or %s)", typ, SecretTypeDockerConfigJSON, SecretTypeDockercfg)
	}
	out := make(DockerConfig, 0, len(entries))
	for key, e := range entries {
		host, p := splitRegistryKey(key)
		if host == "" {
			continue
		}
		a := authn.AuthConfig{Username: e.Username, Password: e.Password, IdentityToken: e.IdentityToken, RegistryToken: e.RegistryToken}
		if e.Auth != "" {
			raw, err := base64.StdEncoding.DecodeString(e.Auth)
			user, pass, ok := strings.Cut(string(raw), ":")
			if err != nil || !ok {
				return nil, fmt.Errorf("auths[%q].auth: expected base64 of user:password", key)
			}
			a.Username, a.Password = user, pass
		}
		out = append(out, credential{host: host, path: p, auth: a})
	}
	// Most specific first: exact hosts before globs, longer paths before
	// shorter; ties by name so the choice does not depend on map order.
	sort.Slice(out, func(i, j int) bool {
		gi, gj := strings.Contains(out[i].host, "*"), strings.Contains(out[j].host, "*")
		if gi != gj {
			return !gi
		}
		if len(out[i].path) != len(out[j].path) {
			return len(out[i].path) > len(out[j].path)
		}
		return out[i].host+"/"+out[i].path < out[j].host+"/"+out[j].path
	})
	return out, nil
}

// splitRegistryKey normalizes a docker config key ("https://index.docker.io/v1/",
// "registry.example.com:5000/team") into a host and a repository path prefix.
func splitRegistryKey(key string) (host, prefix string) {
	key = strings.ToLower(strings.TrimSpace(key))
	key = strings.TrimPrefix(strings.TrimPrefix(key, "https://"), "http://")
	key = strings.Trim(key, "/")
	host, prefix, _ = strings.Cut(key, "/")
	switch host {
	case "docker.io", "index.docker.io", "registry-1.docker.io", "registry.hub.docker.com":
		host = dockerHub
		// Docker Hub's keys name API versions, not repositories.
		if prefix == "v1" || prefix == "v2" {
			prefix = ""
		}
	}
	return host, prefix
}

// Resolve returns the credentials of the most specific entry matching the
// resource's registry (and repository, for entries with a path), or
// anonymous.
func (c DockerConfig) Resolve(r authn.Resource) (authn.Authenticator, error) {
	host := strings.ToLower(r.RegistryStr())
	repo := ""
	if full := r.String(); strings.HasPrefix(full, r.RegistryStr()+"/") {
		repo = full[len(r.RegistryStr())+1:]
	}
	for _, e := range c {
		if matchHost(e.host, host) && matchPath(e.path, repo) {
			return authn.FromConfig(e.auth), nil
		}
	}
	return authn.Anonymous, nil
}

// matchHost compares hosts label by label, allowing * globs in a label
// ("*.example.com"), as the kubelet does; ports must be equal.
func matchHost(pattern, host string) bool {
	if pattern == host {
		return true
	}
	if !strings.Contains(pattern, "*") {
		return false
	}
	ph, pp, _ := strings.Cut(pattern, ":")
	hh, hp, _ := strings.Cut(host, ":")
	if pp != hp {
		return false
	}
	pl, hl := strings.Split(ph, "."), strings.Split(hh, ".")
	if len(pl) != len(hl) {
		return false
	}
	for i := range pl {
		if ok, err := path.Match(pl[i], hl[i]); err != nil || !ok {
			return false
		}
	}
	return true
}

// matchPath reports whether repo lies under prefix, segment-wise.
func matchPath(prefix, repo string) bool {
	return prefix == "" || repo == prefix || strings.HasPrefix(repo, prefix+"/")
}
