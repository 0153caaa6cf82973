/**
 * How similarity is measured.
 * - 'ip': inner product, larger is better.
 * - 'cosine': cosine similarity; vectors are normalised when added (zero vectors are rejected).
 * - 'l2': squared Euclidean distance, smaller is better.
 */
export type Metric = 'ip' | 'l2' | 'cosine';
export const metrics: readonly Metric[] = ['ip', 'l2', 'cosine'];

/** The addon's numbering (native/common/metric.h). */
export function metricCode(metric: Metric): number {
  return metrics.indexOf(metric);
}
