// Package api is the management API: the cloud operations it reproduces on policy
// objects (BinarySecurityPolicy, Attestor, OpaStrategy) in RPC style
// (POST /?Action=NAME), control policies (Alibaba Cloud Resource Directory) in the same style, and
// agencies with trust policies and custom policies (Huawei Cloud IAM) in
// REST style. Every call is authenticated by a bearer token and authorized
// by the iam package; policy object writes go through a Store, IAM state
// through a state file.
package api
