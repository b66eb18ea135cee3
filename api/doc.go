// Package api is the management API: the seeds' operations on policy
// objects (BinarySecurityPolicy, Attestor, OpaStrategy) in RPC style
// (POST /?Action=NAME), control policies (seed 001) in the same style, and
// agencies with trust policies (seed 002) and custom policies (seed 003) in
// REST style. Every call is authenticated by a bearer token and authorized
// by the iam package; policy object writes go through a Store, IAM state
// through a state file.
package api
