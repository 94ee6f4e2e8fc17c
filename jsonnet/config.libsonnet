// Settings every ticketmon dashboard shares; override in a mixin user's own _config.
{
  _config+:: {
    uidPrefix: 'ticketmon-',
    tags: ['ticketmon'],
    refresh: '30s',
    timeFrom: 'now-6h',
    // Datasource uids provisioned by deploy/grafana/provisioning/datasources/ticketmon.yml.
    prometheusUid: 'ticketmon-prometheus',
    receiverUid: 'ticketmon-receiver',
    fraudUid: 'ticketmon-fraud',
    // Where people open the receiver's console (/ui/) from a dashboard link: the
    // address their browser reaches, not Grafana's (compose publishes it on loopback).
    consoleUrl: 'http://127.0.0.1:10190',
    // Scrape job names from deploy/prometheus/prometheus.yml.
    jobs: {
      receiver: 'ticketmon-receiver',
      business: 'ticketmon-business',
      system: 'ticketmon-system',
      blockchain: 'ticketmon-blockchain',
      fraud: 'ticketmon-fraud',
      worker: 'ticketmon-worker',
      node: 'node',
      services: 'platform-services',
    },
    // Thresholds shared by panels and alerts, so both turn red at the same point.
    thresholds: {
      paymentFailureRatio: 0.10,
      mintFailureRatio: 0.05,
      highRiskRatio: 0.20,
      slotLag: 50,
      latencyP95Seconds: 0.5,
      cpuRatio: 0.80,
      memoryRatio: 0.90,
      diskFreeRatio: 0.10,
      feePayerSol: 1,
      bruteForceSourceFailures: 30,
      credentialStuffingAccounts: 100,
      rateLimitedRatio: 0.25,
    },
    // The alert in rules/*.yml each threshold mirrors (null: a dashboard-only line).
    // `ticketmon rules lint` fails unless that alert's first comparison against a
    // number uses the same value, so change a threshold here and in the rule together.
    thresholdAlerts: {
      paymentFailureRatio: 'PaymentFailureRatioHigh',
      mintFailureRatio: 'NFTMintFailureRatioHigh',
      highRiskRatio: 'FraudHighRiskRatioHigh',
      slotLag: 'SolanaSlotLagHigh',
      latencyP95Seconds: 'ServiceLatencyP95High',
      cpuRatio: 'HostHighCPU',
      memoryRatio: 'HostHighMemory',
      diskFreeRatio: 'HostDiskSpaceLow',
      feePayerSol: null,  // the alert predicts exhaustion; the panel marks a low balance
      bruteForceSourceFailures: 'AuthBruteForce',
      credentialStuffingAccounts: 'AuthCredentialStuffing',
      rateLimitedRatio: 'RateLimitStorm',
    },
  },
}
