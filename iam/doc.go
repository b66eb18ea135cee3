// Package iam decides who may call the management API. It parses and
// validates IAM-style policy documents (the grammar of Alibaba Cloud Resource Directory
// control policies, Huawei Cloud IAM custom policies and Huawei Cloud IAM
// agency trust policies), compiles each once into matchers, and answers
// an authorization request with the statement that decided it.
//
// Decision order: an explicit Deny in any applicable statement refuses;
// attached control policies bound everything in their EffectScope (All
// includes administrators, RAM excludes them) so an action none of them
// allows is refused; otherwise an Allow from the principal's, its groups' or
// its assumed agency's custom policies grants; administrators (group
// imagegate:admins) are granted; anything else is refused.
package iam
