{{/* Labels of one component's objects and Pods (also its selector). */}}
{{- define "ferrolb.labels" -}}
app.kubernetes.io/name: ferrolb
app.kubernetes.io/component: {{ . }}
{{- end }}

{{/* The namespace the configuration is read from. */}}
{{- define "ferrolb.configNamespace" -}}
{{- if eq .Values.config.source "metallb" }}{{ .Values.config.metallbNamespace }}{{ else if eq .Values.config.source "configmap" }}{{ .Values.namespace.name }}{{ else }}{{ fail (printf "config.source must be configmap or metallb, not %q" .Values.config.source) }}{{ end }}
{{- end }}

{{/* The arguments both daemons share after their subcommand. */}}
{{- define "ferrolb.args" -}}
- --config-namespace={{ include "ferrolb.configNamespace" . }}
- --config-name={{ .Values.config.name }}
{{- end }}

{{/* Arguments both daemons take at the end. */}}
{{- define "ferrolb.argsTail" -}}
{{- if ne (int .Values.metrics.port) 7472 }}
- --metrics-addr=0.0.0.0:{{ .Values.metrics.port }}
{{- end }}
{{- if eq .Values.config.source "metallb" }}
- --config-source=metallb
{{- end }}
{{- end }}

{{/* Pod annotations for annotation-based Prometheus scraping. */}}
{{- define "ferrolb.podAnnotations" -}}
{{- if .Values.metrics.scrapeAnnotations }}
annotations:
  prometheus.io/scrape: "true"
  prometheus.io/port: {{ .Values.metrics.port | quote }}
{{- end }}
{{- end }}

{{/* The container's ports and probes (same for both daemons). */}}
{{- define "ferrolb.portsAndProbes" -}}
ports:
  - name: metrics
    containerPort: {{ .Values.metrics.port }}
    protocol: TCP
livenessProbe:
  httpGet:
    path: /healthz
    port: metrics
  periodSeconds: 10
  failureThreshold: 3
readinessProbe:
  httpGet:
    path: /readyz
    port: metrics
  periodSeconds: 5
{{- end }}
