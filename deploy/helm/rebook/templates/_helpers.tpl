{{- define "rebook.name" -}}{{ .Release.Name }}{{- end -}}

{{- define "rebook.labels" -}}
app.kubernetes.io/name: rebook
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end -}}

{{- define "rebook.image" -}}{{ .Values.image.repository }}:{{ .Values.image.tag | default .Chart.AppVersion }}{{- end -}}

{{/* The environment every Rebook process reads: the settings, then the
secrets by Secret and key, then Temporal's connection. */}}
{{- define "rebook.env" -}}
- name: TEMPORAL_ADDRESS
  value: {{ .Values.temporal.address | quote }}
- name: TEMPORAL_NAMESPACE
  value: {{ .Values.temporal.namespace | quote }}
- name: REBOOK_PUBLIC_URL
  value: {{ .Values.publicURL | quote }}
{{- range $k, $v := .Values.env }}
- name: {{ $k }}
  value: {{ $v | quote }}
{{- end }}
{{- range $k, $v := .Values.secretEnv }}
- name: {{ $k }}
  valueFrom:
    secretKeyRef:
      name: {{ $v.name }}
      key: {{ $v.key }}
{{- end }}
{{- if .Values.temporal.apiKeySecret.name }}
- name: TEMPORAL_API_KEY
  valueFrom:
    secretKeyRef:
      name: {{ .Values.temporal.apiKeySecret.name }}
      key: {{ .Values.temporal.apiKeySecret.key }}
{{- end }}
{{- if .Values.temporal.tlsSecret }}
- name: TEMPORAL_TLS_CERT
  value: /etc/rebook/temporal-tls/tls.crt
- name: TEMPORAL_TLS_KEY
  value: /etc/rebook/temporal-tls/tls.key
{{- end }}
{{- end -}}

{{- define "rebook.tlsVolume" -}}
{{- if .Values.temporal.tlsSecret }}
volumes:
  - name: temporal-tls
    secret:
      secretName: {{ .Values.temporal.tlsSecret }}
{{- end }}
{{- end -}}

{{- define "rebook.tlsMount" -}}
{{- if .Values.temporal.tlsSecret }}
volumeMounts:
  - name: temporal-tls
    mountPath: /etc/rebook/temporal-tls
    readOnly: true
{{- end }}
{{- end -}}

{{- define "rebook.securityContext" -}}
securityContext:
  runAsNonRoot: true
  runAsUser: 65532
  allowPrivilegeEscalation: false
  readOnlyRootFilesystem: true
  capabilities:
    drop: ["ALL"]
{{- end -}}
