{{/*
The objects every HTTP service (rooms, signaling, metrics, logpurge) has, built the same
way so that a reader learns one shape: Deployment, Service, HPA, PDB, ServiceMonitor.
Each takes (dict "root" $ "component" NAME "values" .Values.NAME "port" PORT ...).
*/}}

{{/*
Deployment of one Parley service. Extra keys: "args" (the `parley` command line),
"env" (rendered EnvVar YAML list), "terminationGracePeriodSeconds" (optional),
"secretMount" (optional dict "secretName" "mountPath": a Secret mounted read-only, so a
rotated value reaches the process without a restart).
*/}}
{{- define "parley.workload.deployment" -}}
{{- $root := .root }}
{{- $v := .values }}
{{- $sel := dict "root" $root "component" .component }}
apiVersion: apps/v1
kind: Deployment
metadata:
  name: {{ include "parley.component.fullname" $sel }}
  namespace: {{ $root.Release.Namespace }}
  labels:
    {{- include "parley.component.labels" $sel | nindent 4 }}
spec:
  {{- if not $v.autoscaling.enabled }}
  replicas: {{ $v.replicas }}
  {{- end }}
  revisionHistoryLimit: 3
  strategy:
    type: RollingUpdate
    rollingUpdate:
      maxSurge: 1
      maxUnavailable: 0
  selector:
    matchLabels:
      {{- include "parley.component.selectorLabels" $sel | nindent 6 }}
  template:
    metadata:
      labels:
        {{- include "parley.component.labels" $sel | nindent 8 }}
      {{- with $v.podAnnotations }}
      annotations:
        {{- toYaml . | nindent 8 }}
      {{- end }}
    spec:
      automountServiceAccountToken: false
      enableServiceLinks: false
      {{- with $root.Values.imagePullSecrets }}
      imagePullSecrets:
        {{- range . }}
        - name: {{ . }}
        {{- end }}
      {{- end }}
      securityContext:
        {{- include "parley.podSecurityContext" 10001 | nindent 8 }}
      terminationGracePeriodSeconds: {{ .terminationGracePeriodSeconds | default 30 }}
      containers:
        - name: {{ .component }}
          image: {{ include "parley.image" $root }}
          imagePullPolicy: {{ $root.Values.image.pullPolicy }}
          args:
            {{- toYaml .args | nindent 12 }}
          ports:
            - name: http
              containerPort: {{ .port }}
              protocol: TCP
          env:
            {{- include "parley.commonEnv" (dict "root" $root "component" .component) | nindent 12 }}
            {{- with .env }}
            {{- . | nindent 12 }}
            {{- end }}
            {{- with $v.extraEnv }}
            {{- toYaml . | nindent 12 }}
            {{- end }}
          startupProbe:
            httpGet:
              path: /healthz
              port: http
            periodSeconds: 2
            failureThreshold: 30
          livenessProbe:
            httpGet:
              path: /healthz
              port: http
            periodSeconds: 10
            timeoutSeconds: 3
            failureThreshold: 3
          readinessProbe:
            httpGet:
              path: /readyz
              port: http
            periodSeconds: 5
            timeoutSeconds: 3
            failureThreshold: 2
          resources:
            {{- toYaml $v.resources | nindent 12 }}
          securityContext:
            {{- include "parley.containerSecurityContext" . | nindent 12 }}
          volumeMounts:
            - name: tmp
              mountPath: /tmp
            {{- with .secretMount }}
            - name: mounted-secret
              mountPath: {{ .mountPath }}
              readOnly: true
            {{- end }}
      volumes:
        - name: tmp
          emptyDir:
            sizeLimit: 64Mi
        {{- with .secretMount }}
        - name: mounted-secret
          secret:
            secretName: {{ .secretName }}
            defaultMode: 0440
        {{- end }}
      {{- with $v.nodeSelector }}
      nodeSelector:
        {{- toYaml . | nindent 8 }}
      {{- end }}
      {{- with $v.tolerations }}
      tolerations:
        {{- toYaml . | nindent 8 }}
      {{- end }}
      {{- with $v.affinity }}
      affinity:
        {{- toYaml . | nindent 8 }}
      {{- end }}
      topologySpreadConstraints:
        {{- if $v.topologySpreadConstraints }}
        {{- toYaml $v.topologySpreadConstraints | nindent 8 }}
        {{- else }}
        - maxSkew: 1
          topologyKey: kubernetes.io/hostname
          whenUnsatisfiable: ScheduleAnyway
          labelSelector:
            matchLabels:
              {{- include "parley.component.selectorLabels" $sel | nindent 14 }}
        {{- end }}
{{- end }}

{{/* ClusterIP Service of one Parley service, port `http`. */}}
{{- define "parley.workload.service" -}}
{{- $sel := dict "root" .root "component" .component }}
apiVersion: v1
kind: Service
metadata:
  name: {{ include "parley.component.fullname" $sel }}
  namespace: {{ .root.Release.Namespace }}
  labels:
    {{- include "parley.component.labels" $sel | nindent 4 }}
spec:
  type: ClusterIP
  selector:
    {{- include "parley.component.selectorLabels" $sel | nindent 4 }}
  ports:
    - name: http
      port: {{ .port }}
      targetPort: http
      protocol: TCP
{{- end }}

{{/*
HorizontalPodAutoscaler on CPU. Extra keys: "target" (scaleTargetRef; default the
component's Deployment).
*/}}
{{- define "parley.workload.hpa" -}}
{{- $sel := dict "root" .root "component" .component }}
{{- $v := .values.autoscaling }}
{{- if gt (int $v.minReplicas) (int $v.maxReplicas) }}
{{- fail (printf "%s.autoscaling.minReplicas (%v) must not exceed %s.autoscaling.maxReplicas (%v)" .valuesKey $v.minReplicas .valuesKey $v.maxReplicas) }}
{{- end }}
apiVersion: autoscaling/v2
kind: HorizontalPodAutoscaler
metadata:
  name: {{ include "parley.component.fullname" $sel }}
  namespace: {{ .root.Release.Namespace }}
  labels:
    {{- include "parley.component.labels" $sel | nindent 4 }}
spec:
  scaleTargetRef:
    {{- if .target }}
    {{- toYaml .target | nindent 4 }}
    {{- else }}
    apiVersion: apps/v1
    kind: Deployment
    name: {{ include "parley.component.fullname" $sel }}
    {{- end }}
  minReplicas: {{ $v.minReplicas }}
  maxReplicas: {{ $v.maxReplicas }}
  metrics:
    - type: Resource
      resource:
        name: cpu
        target:
          type: Utilization
          averageUtilization: {{ $v.targetCPUUtilizationPercentage }}
  behavior:
    scaleDown:
      stabilizationWindowSeconds: 300
{{- end }}

{{/* PodDisruptionBudget over one component's pods. */}}
{{- define "parley.workload.pdb" -}}
{{- $sel := dict "root" .root "component" .component }}
apiVersion: policy/v1
kind: PodDisruptionBudget
metadata:
  name: {{ include "parley.component.fullname" $sel }}
  namespace: {{ .root.Release.Namespace }}
  labels:
    {{- include "parley.component.labels" $sel | nindent 4 }}
spec:
  maxUnavailable: {{ .values.podDisruptionBudget.maxUnavailable }}
  unhealthyPodEvictionPolicy: AlwaysAllow
  selector:
    matchLabels:
      {{- .selector | default (include "parley.component.selectorLabels" $sel) | nindent 6 }}
{{- end }}

{{/* ServiceMonitor scraping /metrics on the component's Service (port `http`). */}}
{{- define "parley.workload.servicemonitor" -}}
{{- $sel := dict "root" .root "component" .component }}
apiVersion: monitoring.coreos.com/v1
kind: ServiceMonitor
metadata:
  name: {{ include "parley.component.fullname" $sel }}
  namespace: {{ .root.Release.Namespace }}
  labels:
    {{- include "parley.component.labels" $sel | nindent 4 }}
    {{- with .root.Values.serviceMonitor.labels }}
    {{- toYaml . | nindent 4 }}
    {{- end }}
spec:
  selector:
    matchLabels:
      {{- include "parley.component.selectorLabels" $sel | nindent 6 }}
  endpoints:
    - port: http
      path: /metrics
      interval: {{ .root.Values.serviceMonitor.interval }}
{{- end }}

{{/* True (non-empty) when ServiceMonitors/PodMonitors should be rendered. */}}
{{- define "parley.serviceMonitor.enabled" -}}
{{- if and .Values.serviceMonitor.enabled (.Capabilities.APIVersions.Has "monitoring.coreos.com/v1") }}true{{ end }}
{{- end }}
