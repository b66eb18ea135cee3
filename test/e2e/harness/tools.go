package harness

import (
	"bufio"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
)

// Names of the environment variables (and env file entries) naming the tools.
const (
	EnvKubeAPIServer = "KUBE_APISERVER"
	EnvEtcd          = "ETCD"
	EnvRegistry      = "REGISTRY"
	EnvCosign        = "COSIGN"
)

// defaultNames are the names looked up on PATH when nothing else names a tool.
var defaultNames = map[string]string{
	EnvKubeAPIServer: "kube-apiserver",
	EnvEtcd:          "etcd",
	EnvRegistry:      "docker-registry",
	EnvCosign:        "cosign",
}

// ToolsCacheDir is where scripts/e2e-tools.sh builds the tools:
// $IMAGEGATE_TOOLS_CACHE, or ~/.cache/imagegate-tools.
func ToolsCacheDir() string {
	if d := os.Getenv("IMAGEGATE_TOOLS_CACHE"); d != "" {
		return d
	}
	home, err := os.UserHomeDir()
	if err != nil {
		return filepath.Join(os.TempDir(), "imagegate-tools")
	}
	return filepath.Join(home, ".cache", "imagegate-tools")
}

var (
	envFileOnce sync.Once
	envFile     map[string]string
)

// readEnvFile parses the `export NAME=VALUE` lines of the tools env file.
func readEnvFile() map[string]string {
	envFileOnce.Do(func() {
		envFile = map[string]string{}
		f, err := os.Open(filepath.Join(ToolsCacheDir(), "env.sh"))
		if err != nil {
			return
		}
		defer f.Close()
		s := bufio.NewScanner(f)
		for s.Scan() {
			line := strings.TrimSpace(strings.TrimPrefix(strings.TrimSpace(s.Text()), "export "))
			name, value, ok := strings.Cut(line, "=")
			if !ok || strings.HasPrefix(line, "#") {
				continue
			}
			envFile[name] = strings.Trim(value, `'"`)
		}
	})
	return envFile
}

// Tool returns the path of a tool named by one of the Env* constants, or
// "" when it cannot be found.
func Tool(env string) string {
	if p := os.Getenv(env); p != "" {
		return p
	}
	if p := readEnvFile()[env]; p != "" {
		if _, err := os.Stat(p); err == nil {
			return p
		}
	}
	if p, err := exec.LookPath(defaultNames[env]); err == nil {
		return p
	}
	return ""
}

// MustTool is Tool that fails the test when the tool is missing.
func MustTool(t TB, env string) string {
	t.Helper()
	p := Tool(env)
	if p == "" {
		t.Fatalf("%s not found: set %s, or run scripts/e2e-tools.sh (it writes %s)",
			defaultNames[env], env, filepath.Join(ToolsCacheDir(), "env.sh"))
	}
	return p
}
