// ticketmon monitoring mixin: _config, the rules (kept as YAML under rules/, each with
// promtool unit tests) and the Grafana dashboards built from jsonnet/dashboards/.
local config = import 'config.libsonnet';

local dashboards = {
  overview: import 'dashboards/overview.libsonnet',
  business: import 'dashboards/business.libsonnet',
  blockchain: import 'dashboards/blockchain.libsonnet',
  services: import 'dashboards/services.libsonnet',
  fraud: import 'dashboards/fraud.libsonnet',
  alerts: import 'dashboards/alerts.libsonnet',
  slo: import 'dashboards/slo.libsonnet',
  'self': import 'dashboards/self.libsonnet',
  security: import 'dashboards/security.libsonnet',
};

// Imports must be literal paths, hence one line per rule file.
local ruleFiles = [
  importstr '../rules/business.yml',
  importstr '../rules/blockchain.yml',
  importstr '../rules/system.yml',
  importstr '../rules/fraud.yml',
  importstr '../rules/security.yml',
  importstr '../rules/batch.yml',
  importstr '../rules/meta.yml',
  importstr '../rules/anomaly.yml',
  importstr '../rules/oncall.yml',
  importstr '../rules/generated/slos.yml',
];

config {
  prometheusAlerts+:: {
    groups+: std.flattenArrays([std.parseYaml(text).groups for text in ruleFiles]),
  },

  grafanaDashboards+:: {
    ['ticketmon-%s.json' % name]: dashboards[name]($._config)
    for name in std.objectFields(dashboards)
  },
}
