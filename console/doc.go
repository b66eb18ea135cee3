// Package console is the web console of imagegate serve (--console-listen):
// a small single-page application, embedded in the binary, over JSON
// endpoints that reuse the management API's authentication and IAM
// policies (package api), the audit store's queries and counters (package
// audit, or PostgreSQL through the same interfaces) and the check engine
// (package check). A sign-in with an API token opens a login kept in
// memory, bounded in count and lifetime, carried in an HttpOnly, Secure,
// SameSite=Strict cookie; every state-changing request also carries the
// login's CSRF token in a header and comes from the console's origin.
package console
