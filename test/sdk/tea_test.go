package sdk

import (
	"errors"
	"fmt"
	"testing"
	"time"

	openapi "github.com/alibabacloud-go/darabonba-openapi/v2/client"
	openapiutil "github.com/alibabacloud-go/darabonba-openapi/v2/utils"
	"github.com/alibabacloud-go/tea/dara"
	"github.com/alibabacloud-go/tea/tea"
)

// TestTeaSDK drives serve with darabonba-openapi (the Tea SDKs' core),
// which signs with ACS3-HMAC-SHA256.
func TestTeaSDK(t *testing.T) {
	s := startServe(t)
	ak, sk := s.accessKey(t, "root", "imagegate:admins")
	client := func(secret string) *openapi.Client {
		c, err := openapi.NewClient(&openapiutil.Config{AccessKeyId: dara.String(ak), AccessKeySecret: dara.String(secret),
			Endpoint: dara.String(s.api), Protocol: dara.String("https")})
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	call := func(c *openapi.Client, action string, body map[string]any, headers map[string]*string) (map[string]any, error) {
		params := &openapiutil.Params{Action: dara.String(action), Version: dara.String("2018-12-03"), Protocol: dara.String("HTTPS"),
			Pathname: dara.String("/"), Method: dara.String("POST"), AuthType: dara.String("AK"), Style: dara.String("RPC"),
			ReqBodyType: dara.String("formData"), BodyType: dara.String("json")}
		req := &openapiutil.OpenApiRequest{Body: body, Headers: headers}
		return c.CallApi(params, req, &dara.RuntimeOptions{IgnoreSSL: dara.Bool(true)})
	}
	good := client(sk)
	waitFor(t, "serve to pick the new key up", func() bool {
		_, err := call(good, "ListOpaClusterStrategyNew", nil, nil)
		return err == nil
	})
	t.Run("operations", func(t *testing.T) {
		out, err := call(good, "CreateOpaStrategyNew", map[string]any{"StrategyName": "block-bad", "RuleAction": "2", "ClusterId": "c1", "ImageName": `["bad-*"]`}, nil)
		if err != nil {
			t.Fatal(err)
		}
		if fmt.Sprint(out["statusCode"]) != "200" || out["body"].(map[string]any)["Success"] != true {
			t.Fatalf("CreateOpaStrategyNew: %v", out)
		}
		waitFor(t, "the strategy to block bad-app", func() bool { return !s.podAllowed(t, "bad-app:1") })
		out, err = call(good, "GetOpaStrategyDetailNew", map[string]any{"StrategyId": "1"}, nil)
		if err != nil {
			t.Fatal(err)
		}
		if d := out["body"].(map[string]any)["Data"].(map[string]any); d["StrategyName"] != "block-bad" || d["Lang"] != "zh" {
			t.Errorf("GetOpaStrategyDetailNew: %v", out)
		}
	})
	nonce := "fixed-nonce-" + time.Now().Format("150405.000")
	if _, err := call(good, "ListOpaClusterStrategyNew", nil, map[string]*string{"x-acs-signature-nonce": dara.String(nonce)}); err != nil {
		t.Fatal(err)
	}
	old := time.Now().Add(-20 * time.Minute).UTC().Format("2006-01-02T15:04:05Z")
	cases := []struct {
		name    string
		c       *openapi.Client
		headers map[string]*string
		code    string
		status  int
	}{
		{"a wrong secret", client(sk + "x"), nil, "SignatureDoesNotMatch", 400},
		{"an expired timestamp", good, map[string]*string{"x-acs-date": dara.String(old)}, "InvalidTimeStamp.Expired", 400},
		{"a nonce used already", good, map[string]*string{"x-acs-signature-nonce": dara.String(nonce)}, "SignatureNonceUsed", 400},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := call(c.c, "ListOpaClusterStrategyNew", nil, c.headers)
			var se *tea.SDKError
			if !errors.As(err, &se) || tea.StringValue(se.Code) != c.code || tea.IntValue(se.StatusCode) != c.status {
				t.Errorf("got %v, want %s", err, c.code)
			}
		})
	}
}
