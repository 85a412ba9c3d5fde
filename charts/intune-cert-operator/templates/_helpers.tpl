{{/* The name every object starts with: the release name, or <release>-intune-cert-operator. With the
release name intune-cert-operator the objects are named as config/default names them. At most 28
characters: the metrics Service adds 35 and a name has at most 63. */}}
{{- define "ico.fullname" -}}
{{- if .Values.fullnameOverride -}}
{{- .Values.fullnameOverride | trunc 28 | trimSuffix "-" -}}
{{- else -}}
{{- $name := default .Chart.Name .Values.nameOverride -}}
{{- if contains $name .Release.Name -}}
{{- .Release.Name | trunc 28 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name $name | trunc 28 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{- define "ico.labels" -}}
app.kubernetes.io/name: intune-cert-operator
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
{{- end -}}

{{- define "ico.selectorLabels" -}}
app.kubernetes.io/name: intune-cert-operator
app.kubernetes.io/instance: {{ .Release.Name }}
control-plane: controller-manager
{{- end -}}

{{- define "ico.serviceAccountName" -}}
{{ include "ico.fullname" . }}-controller-manager
{{- end -}}

{{- define "ico.image" -}}
{{- if .Values.image.digest -}}
{{ .Values.image.repository }}@{{ .Values.image.digest }}
{{- else -}}
{{ .Values.image.repository }}:{{ .Values.image.tag | default .Chart.AppVersion }}
{{- end -}}
{{- end -}}

{{/* The rules of one of config/'s roles, from the copy in files/rbac (hack/sync-chart.sh). */}}
{{- define "ico.rules" -}}
{{- $role := .root.Files.Get (printf "files/rbac/%s.yaml" .file) | fromYaml -}}
{{- if not $role.rules -}}
{{- fail (printf "files/rbac/%s.yaml has no rules: run make chart" .file) -}}
{{- end -}}
{{- toYaml $role.rules -}}
{{- end -}}
