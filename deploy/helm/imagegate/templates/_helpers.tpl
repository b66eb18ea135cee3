{{- define "imagegate.name" -}}{{ .Release.Name }}{{- end -}}
{{- define "imagegate.labels" -}}
app.kubernetes.io/name: imagegate
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end -}}
{{- define "imagegate.selector" -}}
app.kubernetes.io/name: imagegate
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/component: webhook
{{- end -}}
{{- define "imagegate.bootstrap" -}}{{ if not (or .Values.tls.certManager .Values.tls.caBundle) }}true{{ end }}{{- end -}}
{{- /* Names the serving certificate covers: the webhook Service's and, with
the management API, the API Service's (and the console's). The webhook pods' bootstrap issues it
for these (a certificate missing one is replaced), the API pod mounts it. */ -}}
{{- define "imagegate.certHosts" -}}
{{- $hosts := list (include "imagegate.name" .) -}}
{{- if .Values.api.enabled }}{{ $hosts = append $hosts (printf "%s-api" (include "imagegate.name" .)) }}{{ end -}}
{{- if and .Values.api.enabled .Values.api.console.enabled }}{{ $hosts = append $hosts (printf "%s-console" (include "imagegate.name" .)) }}{{ end -}}
{{- range $i, $h := $hosts }}{{ if $i }},{{ end }}{{ $h }}.{{ $.Release.Namespace }}.svc,{{ $h }}.{{ $.Release.Namespace }}.svc.cluster.local{{ end -}}
{{- end -}}
{{- define "imagegate.apiSelector" -}}
app.kubernetes.io/name: imagegate
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/component: api
{{- end -}}
{{- /* The Secret holding the CA of the API server's client certificate. */ -}}
{{- define "imagegate.clientCASecret" -}}
{{- if .Values.clientAuth.caSecret }}{{ .Values.clientAuth.caSecret }}
{{- else if .Values.clientAuth.certManager }}{{ include "imagegate.name" . }}-apiserver-client
{{- else }}{{ fail "clientAuth.enabled needs clientAuth.caSecret or clientAuth.certManager" }}
{{- end -}}
{{- end -}}

{{- /* The chart's checks, run by every template that includes it: the
cluster id has no default, and imagegate lives in its own namespace, which
its webhooks exempt (installed into default, it would exempt default). */ -}}
{{- define "imagegate.validate" -}}
{{- $_ := required "clusterId is required: the cluster id your BinarySecurityPolicy and OpaStrategy objects name, e.g. --set clusterId=prod-cluster" .Values.clusterId -}}
{{- with .Values.policyBundle -}}
{{- if .ref -}}
{{- if not (hasPrefix "oci://" .ref) -}}
{{- fail (printf "policyBundle.ref %q: expected oci://REGISTRY/REPOSITORY:TAG" .ref) -}}
{{- end -}}
{{- if eq (empty .keySecret) (empty .keyConfigMap) -}}
{{- fail "policyBundle.ref needs exactly one of policyBundle.keySecret and policyBundle.keyConfigMap: the public key that must have signed the bundle" -}}
{{- end -}}
{{- if $.Values.api.enabled -}}
{{- fail "policyBundle.ref and api.enabled exclude each other: the management API writes the imagegate.dev resources, which a policy bundle replaces" -}}
{{- end -}}
{{- end -}}
{{- end -}}
{{- if ne .Release.Namespace .Values.namespace -}}
{{- fail (printf "install imagegate into its own namespace %q (helm install ... --namespace %s --create-namespace), not %q: its webhooks exempt their own namespace; set namespace=<name> to use another dedicated one" .Values.namespace .Values.namespace .Release.Namespace) -}}
{{- end -}}
{{- end -}}
