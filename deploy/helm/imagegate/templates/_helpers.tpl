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
