// SLOs and error budgets, from the rules generated out of rules/slo/slos.yaml.
local p = import '../lib/panels.libsonnet';

local s = 'slo=~"$slo"';

function(c) p.dashboard(c, 'slo', 'SLOs & error budgets',
  'Each SLO\'s error ratio, burn rate and remaining 30-day error budget. Burn above 14.4 (1h) or 6 (6h) pages; above 3 (1d) or 1 (3d) opens a ticket.', [
  p.row('Budgets'),
  p.table('Objectives', 'Each SLO\'s objective.', [p.target('slo:objective:ratio{%s}' % s)],
          unit='percentunit', w=8),
  p.gauge('Error budget remaining', 'Share of the 30-day error budget left.',
          [p.target('slo:error_budget_remaining:ratio{%s}' % s, '{{slo}}')], w=16, min=-1, max=1,
          thresholds=p.thresholds('red', [[0, 'orange'], [0.25, 'green']])),
  p.timeseries('Error budget remaining over time', 'Remaining budget per SLO; below zero the objective is missed.',
               [p.target('slo:error_budget_remaining:ratio{%s}' % s, '{{slo}}')],
               unit='percentunit', thresholds=p.thresholds('red', [[0, 'orange'], [0.25, 'green']])),
  p.timeseries('Burn rate (1h)', 'How many times faster than sustainable the budget is spent.',
               [p.target('slo:burn_rate:ratio_rate1h{%s}' % s, '{{slo}}')], unit='none', min=0,
               thresholds=p.thresholds('green', [[1, 'orange'], [6, 'red']])),
  p.row('Error ratios'),
  p.timeseries('Error ratio by window', 'Share of bad events over each alerting window.',
               [p.target('slo:sli_error:ratio_rate5m{%s}' % s, '{{slo}} 5m'),
                p.target('slo:sli_error:ratio_rate1h{%s}' % s, '{{slo}} 1h'),
                p.target('slo:sli_error:ratio_rate6h{%s}' % s, '{{slo}} 6h'),
                p.target('slo:sli_error:ratio_rate3d{%s}' % s, '{{slo}} 3d')],
               unit='percentunit', min=0),
  p.timeseries('Error ratio (30d)', 'Share of bad events over the SLO window, against the budget.',
               [p.target('slo:sli_error:ratio_rate30d{%s}' % s, '{{slo}}'),
                p.target('slo:error_budget:ratio{%s}' % s, '{{slo}} budget')],
               unit='percentunit', min=0),
  p.table('Burn-rate alerts firing', 'SLO alerts firing now, by tier. Shows no data while no error budget burns.',
          [p.target('max by (slo, service, burn_tier, severity) (ALERTS{alertname=~"ErrorBudgetBurnFast|ErrorBudgetBurnSlow", alertstate="firing", %s})' % s)],
          unit='none', w=24),
], [p.queryVariable('slo', 'SLO', 'slo:objective:ratio', 'slo')])
