{{/*
Names. Kubernetes names are DNS labels: 63 characters at most.
*/}}
{{- define "smartscale.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "smartscale.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- $name := default .Chart.Name .Values.nameOverride }}
{{- if contains $name .Release.Name }}
{{- .Release.Name | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" }}
{{- end }}
{{- end }}
{{- end }}

{{- define "smartscale.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
Selector labels: stable across upgrades (a Deployment's selector is immutable).
*/}}
{{- define "smartscale.selectorLabels" -}}
app.kubernetes.io/name: {{ include "smartscale.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{/*
Common labels. app.kubernetes.io/part-of is what helm/monitoring/values.yaml
selects PrometheusRules and AlertmanagerConfigs by.
*/}}
{{- define "smartscale.labels" -}}
helm.sh/chart: {{ include "smartscale.chart" . }}
{{ include "smartscale.selectorLabels" . }}
app.kubernetes.io/version: {{ .Values.image.tag | default .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: smartscale
{{- with .Values.commonLabels }}
{{ toYaml . }}
{{- end }}
{{- end }}

{{- define "smartscale.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "smartscale.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{- define "smartscale.image" -}}
{{- $tag := .Values.image.tag | default .Chart.AppVersion }}
{{- if .Values.image.digest }}
{{- printf "%s@%s" .Values.image.repository .Values.image.digest }}
{{- else }}
{{- printf "%s:%s" .Values.image.repository $tag }}
{{- end }}
{{- end }}

{{/*
Where the Secrets are mounted, and the file paths the config names.
*/}}
{{- define "smartscale.authDir" -}}/etc/smartscale/secrets/auth{{- end }}
{{- define "smartscale.slackDir" -}}/etc/smartscale/secrets/slack{{- end }}
{{- define "smartscale.configPath" -}}/etc/smartscale/smartscale.yaml{{- end }}

{{/*
The webhook URL Alertmanager posts to: the Service's cluster DNS name.
*/}}
{{- define "smartscale.webhookURL" -}}
{{- printf "http://%s.%s.svc:%d/v1/alerts" (include "smartscale.fullname" .) .Release.Namespace (int .Values.service.port) }}
{{- end }}

{{/*
SmartScale's configuration file: .Values.config plus the keys the chart owns
(listen address, in-cluster API access, the mounted secret files). The
result is what `smartscale config check` accepts; helm/test proves it with
internal/config.Parse.
*/}}
{{- define "smartscale.config" -}}
{{- $cfg := deepCopy .Values.config }}
{{- $server := dict }}
{{- if hasKey $cfg "server" }}{{- $server = get $cfg "server" }}{{- end }}
{{- $_ := set $server "listenAddress" (printf ":%d" (int .Values.containerPort)) }}
{{- $_ := set $server "auth" (dict "bearerTokenFile" (printf "%s/%s" (include "smartscale.authDir" .) .Values.auth.tokenKey)) }}
{{- $_ := set $cfg "server" $server }}
{{- $_ := set $cfg "kube" (dict "inCluster" true) }}
{{- if .Values.slack.existingSecret }}
{{- $notify := dict }}
{{- if hasKey $cfg "notify" }}{{- $notify = get $cfg "notify" }}{{- end }}
{{- $_ := set $notify "slack" (dict "webhookURLFile" (printf "%s/%s" (include "smartscale.slackDir" .) .Values.slack.webhookURLKey)) }}
{{- $_ := set $cfg "notify" $notify }}
{{- end }}
{{- toYaml $cfg }}
{{- end }}
