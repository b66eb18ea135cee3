package sdk

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"net/url"
)

func urlQuery(s string) string { return url.QueryEscape(s) }

// publicKeys is an attestor's PublicKeys parameter: one fresh P-256 key
// (nothing is signed with it here).
func publicKeys() string {
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	der, _ := x509.MarshalPKIXPublicKey(&key.PublicKey)
	raw, _ := json.Marshal([]string{string(pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}))})
	return string(raw)
}
