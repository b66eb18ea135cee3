package sdk

import (
	"encoding/json"
	"errors"
	"testing"

	"github.com/aliyun/alibaba-cloud-sdk-go/sdk"
	sdkerrors "github.com/aliyun/alibaba-cloud-sdk-go/sdk/errors"
	"github.com/aliyun/alibaba-cloud-sdk-go/sdk/requests"
	"github.com/aliyun/alibaba-cloud-sdk-go/services/resourcemanager"
)

// TestAlibabaCloudSDK drives serve with alibaba-cloud-sdk-go, signing with
// SignatureVersion 1.0 (HMAC-SHA1): the typed Resource Directory client,
// and Security Center operations through CommonRequest.
func TestAlibabaCloudSDK(t *testing.T) {
	s := startServe(t)
	id, secret := s.accessKey(t, "root", "imagegate:admins")
	rec := &recorder{base: insecureTransport()}
	rm, err := resourcemanager.NewClientWithAccessKey("cn-hangzhou", id, secret)
	if err != nil {
		t.Fatal(err)
	}
	rm.SetTransport(rec)
	common, err := sdk.NewClientWithAccessKey("cn-hangzhou", id, secret)
	if err != nil {
		t.Fatal(err)
	}
	common.SetTransport(rec)
	sas := func(client *sdk.Client, action string, params map[string]string) (map[string]any, error) {
		req := requests.NewCommonRequest()
		req.Method, req.Scheme, req.Domain, req.Product, req.Version, req.ApiName = "POST", "https", s.api, "Sas", "2018-12-03", action
		for k, v := range params {
			req.FormParams[k] = v
		}
		resp, err := client.ProcessCommonRequest(req)
		if err != nil {
			return nil, err
		}
		var m map[string]any
		if err := json.Unmarshal(resp.GetHttpContentBytes(), &m); err != nil {
			return nil, err
		}
		return m, nil
	}

	t.Run("ResourceManager UpdateControlPolicy (typed client)", func(t *testing.T) {
		waitFor(t, "serve to pick the new key up", func() bool {
			_, err := sas(common, "ListOpaClusterStrategyNew", nil)
			return err == nil
		})
		create := resourcemanager.CreateCreateControlPolicyRequest()
		create.Scheme, create.Domain = "https", s.api
		create.PolicyName, create.Description, create.EffectScope = "NoDeletes", "no-deletes", "RAM"
		create.PolicyDocument = `{"Version":"1","Statement":[{"Effect":"Deny","Action":"imagegate:Delete*","Resource":"*"}]}`
		created, err := rm.CreateControlPolicy(create)
		if err != nil {
			t.Fatal(err)
		}
		update := resourcemanager.CreateUpdateControlPolicyRequest()
		update.Scheme, update.Domain = "https", s.api
		update.PolicyId, update.NewPolicyName, update.NewDescription = created.ControlPolicy.PolicyId, "NoDeletesAnywhere", "renamed"
		updated, err := rm.UpdateControlPolicy(update)
		if err != nil {
			t.Fatal(err)
		}
		if updated.ControlPolicy.PolicyName != "NoDeletesAnywhere" || updated.ControlPolicy.PolicyId != created.ControlPolicy.PolicyId ||
			updated.ControlPolicy.EffectScope != "RAM" || updated.RequestId == "" {
			t.Errorf("UpdateControlPolicy answered %+v", updated)
		}
	})

	t.Run("Security Center through CommonRequest governs the next admission", func(t *testing.T) {
		if !s.podAllowed(t, "bad-app:1") {
			t.Fatal("bad-app refused before any strategy")
		}
		out, err := sas(common, "CreateOpaStrategyNew", map[string]string{"StrategyName": "block-bad", "RuleAction": "2", "ClusterId": "c1", "ImageName": `["bad-*"]`})
		if err != nil {
			t.Fatal(err)
		}
		if out["Success"] != true {
			t.Fatalf("CreateOpaStrategyNew: %v", out)
		}
		waitFor(t, "the strategy to block bad-app", func() bool { return !s.podAllowed(t, "bad-app:1") })
		detail, err := sas(common, "GetOpaStrategyDetailNew", map[string]string{"StrategyId": "1"})
		if err != nil {
			t.Fatal(err)
		}
		d, _ := detail["Data"].(map[string]any)
		if d["StrategyName"] != "block-bad" || d["Lang"] != "zh" || d["CurrentPage"] != 1.0 || d["RuleAction"] != 2.0 {
			t.Errorf("GetOpaStrategyDetailNew: %v", detail)
		}
		if _, err := sas(common, "UpdateOpaStrategyNew", map[string]string{"StrategyId": "1", "RuleAction": "1"}); err != nil {
			t.Fatal(err)
		}
		waitFor(t, "the alert strategy to admit bad-app", func() bool { return s.podAllowed(t, "bad-app:1") })

		s.bearer(t, "POST", "/?Action=CreateAttestor", "application/x-www-form-urlencoded", "Name=ci&TransparencyLog=ignore&PublicKeys="+urlQuery(publicKeys()))
		s.bearer(t, "POST", "/?Action=CreateBinarySecurityPolicy", "application/x-www-form-urlencoded",
			"Name=signed&Status=disabled&Policy="+urlQuery(`{"PolicyMode":"requireAttestor","RequiredAttestors":["ci"]}`)+"&Clusters="+urlQuery(`[{"ClusterId":"c1","Namespaces":["web"]}]`))
		if _, err := sas(common, "ModifyBinarySecurityPolicy", map[string]string{"Name": "signed", "Remark": "from the SDK",
			"Policy": `{"PolicyMode":"requireAttestor","RequiredAttestors":["ci"]}`, "Clusters": `[{"ClusterId":"c1","Namespaces":["web","api"]}]`}); err != nil {
			t.Fatal(err)
		}
		list, err := sas(common, "DescribeBinarySecurityPolicies", nil)
		if err != nil {
			t.Fatal(err)
		}
		if p := list["PolicyList"].([]any)[0].(map[string]any); p["Remark"] != "from the SDK" || len(p["Clusters"].([]any)[0].(map[string]any)["Namespaces"].([]any)) != 2 {
			t.Errorf("after ModifyBinarySecurityPolicy: %v", p)
		}
	})

	t.Run("refusals", func(t *testing.T) {
		wrong, err := sdk.NewClientWithAccessKey("cn-hangzhou", id, secret+"x")
		if err != nil {
			t.Fatal(err)
		}
		wrong.SetTransport(&recorder{base: insecureTransport()})
		unknown, _ := sdk.NewClientWithAccessKey("cn-hangzhou", "IGNOSUCHKEY000000000", secret)
		unknown.SetTransport(&recorder{base: insecureTransport()})
		cases := []struct {
			name   string
			client *sdk.Client
			code   string
			status int
		}{
			{"a wrong secret", wrong, "SignatureDoesNotMatch", 400},
			{"an unknown key id", unknown, "InvalidAccessKeyId.NotFound", 404},
		}
		for _, c := range cases {
			t.Run(c.name, func(t *testing.T) {
				_, err := sas(c.client, "ListOpaClusterStrategyNew", nil)
				var se *sdkerrors.ServerError
				if !errors.As(err, &se) || se.ErrorCode() != c.code || se.HttpStatus() != c.status {
					t.Fatalf("got %v, want %s", err, c.code)
				}
			})
		}
		t.Run("a replayed request", func(t *testing.T) {
			if _, err := sas(common, "ListOpaClusterStrategyNew", nil); err != nil {
				t.Fatal(err)
			}
			st, body := rec.replay(t)
			if st != 400 || body["Code"] != "SignatureNonceUsed" {
				t.Errorf("replay: %d %v", st, body)
			}
		})
	})
}
