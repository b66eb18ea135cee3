// Package api is the management API: the clouds' operations on policy
// objects (BinarySecurityPolicy, Attestor, OpaStrategy) in RPC style
// (POST /?Action=NAME), control policies (Resource Directory) in the same style, and
// agencies with trust policies (IAM v5) and custom policies (IAM v3) in
// REST style. Every call is authenticated by a bearer token and authorized
// by the iam package; policy object writes go through a Store, IAM state
// through a state file.
package api
