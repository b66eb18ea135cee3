// Package sdk drives a real imagegate serve with the clouds' own SDKs.
package sdk
