package sdk

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"

	"github.com/huaweicloud/huaweicloud-sdk-go-v3/core/auth/global"
	"github.com/huaweicloud/huaweicloud-sdk-go-v3/core/config"
	"github.com/huaweicloud/huaweicloud-sdk-go-v3/core/httphandler"
	"github.com/huaweicloud/huaweicloud-sdk-go-v3/core/sdkerr"
	iam3 "github.com/huaweicloud/huaweicloud-sdk-go-v3/services/iam/v3"
	model3 "github.com/huaweicloud/huaweicloud-sdk-go-v3/services/iam/v3/model"
	iam5 "github.com/huaweicloud/huaweicloud-sdk-go-v3/services/iam/v5"
	model5 "github.com/huaweicloud/huaweicloud-sdk-go-v3/services/iam/v5/model"
)

// captured is the last request a Huawei Cloud client sent (its request
// handler sees a copy of each, signed).
type captured struct {
	mu   sync.Mutex
	req  *http.Request
	body []byte
}

func (c *captured) handler() *httphandler.HttpHandler {
	return httphandler.NewHttpHandler().AddRequestHandler(func(r http.Request) {
		var body []byte
		if r.Body != nil {
			body, _ = io.ReadAll(r.Body)
		}
		c.mu.Lock()
		c.req, c.body = r.Clone(context.Background()), body
		c.mu.Unlock()
	})
}

// huaweiClients are IAM v5 and v3 clients of serve signing with ak/sk.
func huaweiClients(t *testing.T, s *server, ak, sk string, cap *captured) (*iam5.IamClient, *iam3.IamClient) {
	t.Helper()
	// A domain id, so the SDK does not ask IAM for one first.
	cred := global.NewCredentialsBuilder().WithAk(ak).WithSk(sk).WithDomainId("imagegate").Build()
	hc := config.DefaultHttpConfig().WithIgnoreSSLVerification(true).WithHttpHandler(cap.handler())
	c5, err := iam5.IamClientBuilder().WithEndpoints([]string{"https://" + s.api}).WithCredential(cred).WithHttpConfig(hc).SafeBuild()
	if err != nil {
		t.Fatal(err)
	}
	c3, err := iam3.IamClientBuilder().WithEndpoints([]string{"https://" + s.api}).WithCredential(cred).WithHttpConfig(hc).SafeBuild()
	if err != nil {
		t.Fatal(err)
	}
	return iam5.NewIamClient(c5), iam3.NewIamClient(c3)
}

// TestHuaweiCloudSDK drives serve with huaweicloud-sdk-go-v3, signing with
// SDK-HMAC-SHA256: an IAM v5 trust policy update, an IAM v3 custom policy
// update and show.
func TestHuaweiCloudSDK(t *testing.T) {
	s := startServe(t)
	ak, sk := s.accessKey(t, "root", "imagegate:admins")
	cap := &captured{}
	v5, v3 := huaweiClients(t, s, ak, sk, cap)
	agency := s.bearer(t, "POST", "/v5/agencies", "application/json",
		`{"agency_name":"ci-deployer","trust_policy":"{\"Version\":\"5.0\",\"Statement\":[{\"Action\":[\"sts:agencies:assume\"],\"Effect\":\"Allow\",\"Principal\":{\"IAM\":[\"ci-bot\"]}}]}"}`)["agency"].(map[string]any)["agency_id"].(string)
	// Written with a string Action and a number condition value: reads
	// answer lists of strings, which the SDK's models declare.
	role := s.bearer(t, "POST", "/v3.0/OS-ROLE/roles", "application/json",
		`{"role":{"display_name":"Deployer","type":"AX","description":"d","policy":{"Version":"1.1","Statement":[{"Effect":"Allow","Action":"imagegate:UpdateOpaStrategyNew","Condition":{"NumericLessThan":{"imagegate:RuleAction":3}}}]}}}`)["role"].(map[string]any)["id"].(string)

	t.Run("IAM v5 UpdateTrustPolicyV5", func(t *testing.T) {
		waitFor(t, "serve to pick the new key up", func() bool {
			_, err := v3.ShowCustomPolicy(&model3.ShowCustomPolicyRequest{RoleId: role})
			return err == nil
		})
		trust := `{"Version":"5.0","Statement":[{"Action":["sts:agencies:assume"],"Effect":"Allow","Principal":{"IAM":["ci-bot","group:release"]},"Condition":{"StringEquals":{"imagegate:Principal":["ci-bot"]}}}]}`
		if _, err := v5.UpdateTrustPolicyV5(&model5.UpdateTrustPolicyV5Request{AgencyId: agency, Body: &model5.UpdateTrustPolicyReqBody{TrustPolicy: trust}}); err != nil {
			t.Fatal(err)
		}
		if got := s.bearer(t, "GET", "/v5/agencies/"+agency, "", "")["agency"].(map[string]any)["trust_policy"]; got != trust {
			t.Errorf("trust policy after the update: %v", got)
		}
		_, err := v5.UpdateTrustPolicyV5(&model5.UpdateTrustPolicyV5Request{AgencyId: agency, Body: &model5.UpdateTrustPolicyReqBody{
			TrustPolicy: `{"Version":"5.0","Statement":[{"Action":["sts:agencies:assume"],"Effect":"Deny","Principal":{"IAM":["*"]},"Condition":{"StringLike":{"imagegate:ClusterId":["prod-*"]}}}]}`}})
		var se *sdkerr.ServiceResponseError
		if !errors.As(err, &se) || se.StatusCode != 400 || se.ErrorCode != "InvalidParameter.trust_policy.Malformed" || !strings.Contains(se.ErrorMessage, "imagegate:ClusterId") {
			t.Errorf("a trust policy on an object's key: %v", err)
		}
	})

	t.Run("IAM v3 ShowCustomPolicy decodes a policy written loosely", func(t *testing.T) {
		got, err := v3.ShowCustomPolicy(&model3.ShowCustomPolicyRequest{RoleId: role})
		if err != nil {
			t.Fatal(err)
		}
		st := got.Role.Policy.Statement[0]
		if got.Role.Policy.Version != "1.1" || len(st.Action) != 1 || st.Action[0] != "imagegate:UpdateOpaStrategyNew" ||
			st.Condition["NumericLessThan"]["imagegate:RuleAction"][0] != "3" || got.Role.DescriptionCn != nil {
			t.Errorf("ShowCustomPolicy: %v", got)
		}
	})

	t.Run("IAM v3 UpdateCloudServiceCustomPolicy", func(t *testing.T) {
		res := []string{"imagegate:opastrategy/*"}
		cn := "部署"
		body := &model3.UpdateCloudServiceCustomPolicyRequestBody{Role: &model3.ServicePolicyRoleOption{
			DisplayName: "Deployer", Type: "AX", Description: "create and update strategies", DescriptionCn: &cn,
			Policy: &model3.ServicePolicy{Version: "1.1", Statement: []model3.ServiceStatement{{
				Action: []string{"imagegate:CreateOpaStrategyNew", "imagegate:UpdateOpaStrategyNew"}, Effect: model3.GetServiceStatementEffectEnum().ALLOW,
				Resource: &res, Condition: map[string]map[string][]string{"StringStartWith": {"imagegate:ClusterId": {"dev-"}}}}}}}}
		updated, err := v3.UpdateCloudServiceCustomPolicy(&model3.UpdateCloudServiceCustomPolicyRequest{RoleId: role, Body: body})
		if err != nil {
			t.Fatal(err)
		}
		if updated.Role.Description != "create and update strategies" || len(updated.Role.Policy.Statement[0].Action) != 2 || *updated.Role.DescriptionCn != cn {
			t.Errorf("UpdateCloudServiceCustomPolicy: %v", updated)
		}
		shown, err := v3.ShowCustomPolicy(&model3.ShowCustomPolicyRequest{RoleId: role})
		if err != nil {
			t.Fatal(err)
		}
		if st := shown.Role.Policy.Statement[0]; st.Condition["StringStartWith"]["imagegate:ClusterId"][0] != "dev-" {
			t.Errorf("ShowCustomPolicy after the update: %v", shown)
		}
	})

	t.Run("refusals", func(t *testing.T) {
		_, wrong := huaweiClients(t, s, ak, sk+"x", &captured{})
		_, unknown := huaweiClients(t, s, "IGNOSUCHKEY000000000", sk, &captured{})
		cases := []struct {
			name   string
			client *iam3.IamClient
			reason string
		}{
			{"a wrong secret", wrong, "SignatureDoesNotMatch"},
			{"an unknown key id", unknown, "InvalidAccessKeyId.NotFound"},
		}
		for _, c := range cases {
			t.Run(c.name, func(t *testing.T) {
				_, err := c.client.ShowCustomPolicy(&model3.ShowCustomPolicyRequest{RoleId: role})
				var se *sdkerr.ServiceResponseError
				if !errors.As(err, &se) || se.StatusCode != 401 || se.ErrorCode != "APIGW.0301" || !strings.Contains(se.ErrorMessage, c.reason) {
					t.Errorf("got %v, want APIGW.0301 (%s)", err, c.reason)
				}
			})
		}
		t.Run("a replayed write", func(t *testing.T) {
			trust := `{"Version":"5.0","Statement":[{"Action":["sts:agencies:assume"],"Effect":"Allow","Principal":{"IAM":["ci-bot"]}}]}`
			if _, err := v5.UpdateTrustPolicyV5(&model5.UpdateTrustPolicyV5Request{AgencyId: agency, Body: &model5.UpdateTrustPolicyReqBody{TrustPolicy: trust}}); err != nil {
				t.Fatal(err)
			}
			cap.mu.Lock()
			req := cap.req.Clone(context.Background())
			req.Body = io.NopCloser(bytes.NewReader(cap.body))
			cap.mu.Unlock()
			req.RequestURI = ""
			resp, err := s.client.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			raw, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != 401 || !strings.Contains(string(raw), `"APIGW.0301"`) || !strings.Contains(string(raw), "SignatureNonceUsed") {
				t.Errorf("replay: %d %s", resp.StatusCode, raw)
			}
		})
	})
}
