// ticketmon's own small Grafana panel library: just what our dashboards use.
//
// Panels are built without ids or positions; `dashboard()` numbers them and lays them
// out on the 24-column grid, so no dashboard hand-places a panel.
local ds = { type: 'prometheus', uid: '${datasource}' };

local steps(base, pairs) =
  [{ color: base, value: null }] + [{ color: p[1], value: p[0] } for p in pairs];

{
  // Prometheus query of a panel; `legend` uses Grafana's {{label}} syntax.
  target(expr, legend='', instant=false):: {
    datasource: ds,
    expr: expr,
    legendFormat: legend,
    range: !instant,
    instant: instant,
  },

  // Thresholds: base colour, then [value, colour] pairs in rising order.
  thresholds(base='green', pairs=[]):: { mode: 'absolute', steps: steps(base, pairs) },

  local panel(type, title, description, targets, unit, w, h, thresholds, extra) = {
    type: type,
    title: title,
    description: description,
    datasource: ds,
    targets: [targets[i] { refId: std.char(65 + i) } for i in std.range(0, std.length(targets) - 1)],
    fieldConfig: {
      defaults: {
        unit: unit,
        thresholds: thresholds,
        color: { mode: if type == 'timeseries' then 'palette-classic' else 'thresholds' },
      },
      overrides: [],
    },
    gridPos: { w: w, h: h },
  } + extra,

  timeseries(title, description, targets, unit='short', w=12, h=8, min=null, max=null,
             thresholds=$.thresholds(), stack=false)::
    panel('timeseries', title, description, targets, unit, w, h, thresholds, {
      fieldConfig+: {
        defaults+: {
          [if min != null then 'min']: min,
          [if max != null then 'max']: max,
          custom: {
            drawStyle: 'line',
            lineWidth: 1,
            fillOpacity: if stack then 30 else 10,
            showPoints: 'never',
            stacking: { mode: if stack then 'normal' else 'none', group: 'A' },
            thresholdsStyle: {
              mode: if std.length(thresholds.steps) > 1 then 'line' else 'off',
            },
          },
        },
      },
      options: {
        legend: { displayMode: 'list', placement: 'bottom', showLegend: true },
        tooltip: { mode: 'multi', sort: 'desc' },
      },
    }),

  stat(title, description, targets, unit='short', w=4, h=4, thresholds=$.thresholds(),
       colorMode='value')::
    panel('stat', title, description, targets, unit, w, h, thresholds, {
      options: {
        colorMode: colorMode,
        graphMode: 'area',
        justifyMode: 'auto',
        textMode: 'auto',
        reduceOptions: { calcs: ['lastNotNull'], fields: '', values: false },
      },
    }),

  gauge(title, description, targets, unit='percentunit', w=4, h=6, min=0, max=1,
        thresholds=$.thresholds())::
    panel('gauge', title, description, targets, unit, w, h, thresholds, {
      fieldConfig+: { defaults+: { min: min, max: max } },
      options: {
        showThresholdMarkers: true,
        showThresholdLabels: false,
        reduceOptions: { calcs: ['lastNotNull'], fields: '', values: false },
      },
    }),

  // A table of instant query results; one column per label plus the value.
  table(title, description, targets, unit='short', w=12, h=8, thresholds=$.thresholds())::
    panel('table', title, description, [t { instant: true, range: false, format: 'table' }
                                        for t in targets],
          unit, w, h, thresholds, {
      options: { showHeader: true, cellHeight: 'sm', footer: { show: false } },
      transformations: [{ id: 'organize', options: { excludeByName: { Time: true } } }],
    }),

  // A table of the receiver's REST API through the Infinity datasource.
  // `link`: [column text, URL with ${__value.raw}] makes that column's cells links.
  receiverTable(title, description, uid, path, params, root, columns, w=24, h=8,
                link=null):: {
    type: 'table',
    title: title,
    description: description,
    datasource: { type: 'yesoreyeram-infinity-datasource', uid: uid },
    targets: [{
      refId: 'A',
      datasource: { type: 'yesoreyeram-infinity-datasource', uid: uid },
      type: 'json',
      source: 'url',
      format: 'table',
      parser: 'backend',
      url: path,
      url_options: { method: 'GET', params: [{ key: k, value: params[k] }
                                             for k in std.objectFields(params)] },
      root_selector: root,
      columns: [{ selector: c[0], text: c[1], type: c[2] } for c in columns],
    }],
    fieldConfig: { defaults: { unit: 'none' }, overrides: if link == null then [] else [{
      matcher: { id: 'byName', options: link[0] },
      properties: [{ id: 'links', value: [{ title: 'Open in the console', url: link[1] }] }],
    }] },
    options: { showHeader: true, cellHeight: 'sm', footer: { show: false } },
    gridPos: { w: w, h: h },
  },

  // An annotation from a JSON API through an Infinity datasource: the query returns
  // one row per event with the columns Grafana maps by name (time, timeEnd, title, text,
  // tags); `columns` is [selector, annotation column, type].
  infinityAnnotation(name, uid, color, path, params, root, columns):: {
    name: name,
    datasource: { type: 'yesoreyeram-infinity-datasource', uid: uid },
    enable: true,
    hide: false,
    iconColor: color,
    target: {
      refId: 'Anno',
      type: 'json',
      source: 'url',
      format: 'dataframe',
      parser: 'backend',
      url: path,
      url_options: { method: 'GET', params: [{ key: k, value: params[k] }
                                             for k in std.objectFields(params)] },
      root_selector: root,
      columns: [{ selector: c[0], text: c[1], type: c[2] } for c in columns],
    },
  },

  // Incidents from the receiver's API: a range from opened to resolved (open: a point).
  incidentAnnotations(config):: $.infinityAnnotation(
    'Incidents', config.receiverUid, 'orange', '/api/v1/incidents', { limit: '500' },
    'incidents',
    [['opened_at', 'time', 'timestamp'], ['resolved_at', 'timeEnd', 'timestamp'],
     ['title', 'title', 'string'], ['service', 'text', 'string'],
     ['severity', 'tags', 'string']]),

  // High-risk fraud checks from the fraud service's events API, for the dashboard's range.
  fraudAnnotations(config):: $.infinityAnnotation(
    'High-risk fraud checks', config.fraudUid, 'purple', '/api/v1/fraud/events',
    { min_level: 'high', from: '${__from}', to: '${__to}', limit: '500' }, '',
    [['time', 'time', 'timestamp_epoch'], ['title', 'title', 'string'],
     ['text', 'text', 'string']]),

  row(title):: { type: 'row', title: title, collapsed: false, panels: [], gridPos: { w: 24, h: 1 } },

  datasourceVariable(defaultUid):: {
    name: 'datasource',
    label: 'Prometheus',
    type: 'datasource',
    query: 'prometheus',
    current: { text: 'Prometheus', value: defaultUid },
    hide: 0,
    refresh: 1,
    regex: '',
    options: [],
  },

  // A multi-value variable from label_values(metric, label), "All" by default.
  queryVariable(name, label, metric, labelName):: {
    name: name,
    label: label,
    type: 'query',
    datasource: ds,
    query: { query: 'label_values(%s, %s)' % [metric, labelName], refId: 'PrometheusVariableQueryEditor-VariableQuery' },
    refresh: 2,
    includeAll: true,
    multi: true,
    allValue: '.*',
    current: { text: ['All'], value: ['$__all'] },
    sort: 1,
    hide: 0,
    regex: '',
    options: [],
  },

  // Flow panels left to right, wrapping at 24 columns; a row starts a new line.
  local layout(panels) = std.foldl(
    function(acc, p)
      local w = p.gridPos.w;
      local h = p.gridPos.h;
      local isRow = p.type == 'row';
      local wrap = isRow || acc.x + w > 24;
      local x = if wrap then 0 else acc.x;
      local y = if wrap then acc.y + acc.rowH else acc.y;
      acc {
        panels+: [p { id: std.length(acc.panels) + 1, gridPos: { x: x, y: y, w: w, h: h } }],
        x: if isRow then 0 else x + w,
        y: if isRow then y + h else y,
        rowH: if isRow then 0 else if wrap then h else std.max(acc.rowH, h),
      },
    panels,
    { panels: [], x: 0, y: 0, rowH: 0 },
  ).panels,

  dashboard(config, slug, title, description, panels, variables=[], links=true,
            annotations=[]):: {
    uid: config.uidPrefix + slug,
    title: 'ticketmon / ' + title,
    description: description,
    tags: config.tags,
    timezone: 'utc',
    editable: false,
    graphTooltip: 1,
    refresh: config.refresh,
    time: { from: config.timeFrom, to: 'now' },
    schemaVersion: 39,
    version: 1,
    fiscalYearStartMonth: 0,
    liveNow: false,
    weekStart: '',
    templating: { list: [$.datasourceVariable(config.prometheusUid)] + variables },
    annotations: { list: [
      {
        name: 'Annotations & Alerts',
        builtIn: 1,
        datasource: { type: 'grafana', uid: '-- Grafana --' },
        enable: true,
        hide: true,
        iconColor: 'rgba(0, 211, 255, 1)',
        type: 'dashboard',
      },
      {
        name: 'Critical alerts',
        datasource: ds,
        enable: true,
        hide: false,
        iconColor: 'red',
        expr: 'ALERTS{alertstate="firing", severity="critical"}',
      },
    ] + annotations },
    links: if links then [{
      title: 'ticketmon',
      type: 'dashboards',
      tags: config.tags,
      asDropdown: true,
      includeVars: false,
      keepTime: true,
      targetBlank: false,
      icon: 'external link',
      tooltip: '',
      url: '',
    }] else [],
    panels: layout(panels),
  },
}
