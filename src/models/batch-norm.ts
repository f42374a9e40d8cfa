// The zoo's batch-norm layer: TF.js's BatchNormalization with a fused training path. In training mode on a
// backend that has the project's SoftsegBatchNormTrain kernel (wasm, webgpu), the batch statistics, the normalisation
// and their gradient are one kernel each way instead of ~10 ops forward and ~20 backward; everywhere else
// (inference, other backends, other axes) it is the stock layer. The moving averages are updated with the same
// arithmetic as the stock layer. It serialises under the stock class name 'BatchNormalization' (same config, same
// weights), so a saved model.json loads in plain TensorFlow.js; importing this module registers it under that
// name, so models loaded here get the fused path too.
import * as tf from '@tensorflow/tfjs';
import { batchNormTrain, batchNormTrainAvailable } from '../backends/kernels/batch-norm-train.js';

type BatchNormArgs = NonNullable<Parameters<typeof tf.layers.batchNormalization>[0]>;
type Kwargs = Record<string, unknown>;

/** The fields of TF.js's BatchNormalization layer the fused path reads (private in its typings). */
interface StockFields {
  axis: number;
  momentum: number;
  epsilon: number;
  center: boolean;
  scale: boolean;
  gamma: tf.LayerVariable;
  beta: tf.LayerVariable;
  movingMean: tf.LayerVariable;
  movingVariance: tf.LayerVariable;
}

interface StockLayer extends tf.layers.Layer {
  call(inputs: tf.Tensor | tf.Tensor[], kwargs: Kwargs): tf.Tensor | tf.Tensor[];
}

const stockEntry = tf.serialization.SerializationMap.getMap().classNameMap['BatchNormalization'];
if (stockEntry === undefined) throw new Error('TensorFlow.js has no BatchNormalization layer class registered');
const StockBatchNormalization = stockEntry[0] as unknown as new (args?: BatchNormArgs) => StockLayer;

export class FusedBatchNormalization extends StockBatchNormalization {
  /** The stock class name: model.json stays loadable by plain TensorFlow.js. */
  static className = 'BatchNormalization';

  constructor(args?: BatchNormArgs) {
    super(args);
  }

  override call(inputs: tf.Tensor | tf.Tensor[], kwargs: Kwargs): tf.Tensor | tf.Tensor[] {
    const self = this as unknown as StockFields;
    const input = Array.isArray(inputs) ? inputs[0] : inputs;
    const training = kwargs?.['training'] === true;
    const lastAxis = input !== undefined && (self.axis === -1 || self.axis === input.rank - 1);
    if (!training || input === undefined || input.rank < 2 || input.dtype !== 'float32' || !lastAxis || !self.center || !self.scale || !batchNormTrainAvailable()) {
      return super.call(inputs, kwargs);
    }
    return tf.tidy(() => {
      // The kernel also computes the stock layer's moving-average update, moving − (moving − batch)·(1 − momentum),
      // float32 op for op (bit for bit given the batch statistics, which the kernel sums in double precision).
      const { y, movingMean, movingVariance } = batchNormTrain(input, self.gamma.read() as tf.Tensor1D, self.beta.read() as tf.Tensor1D, self.epsilon, {
        mean: self.movingMean.read() as tf.Tensor1D,
        variance: self.movingVariance.read() as tf.Tensor1D,
        momentum: self.momentum,
      });
      self.movingMean.write(movingMean!);
      self.movingVariance.write(movingVariance!);
      return y;
    });
  }
}

// fromConfig is the stock class's static (inherited at run time; its typings hide it).
tf.serialization.registerClass(FusedBatchNormalization as unknown as tf.serialization.SerializableConstructor<tf.layers.Layer>);

/** A batch-norm layer with the fused training path (drop-in for tf.layers.batchNormalization). */
export function batchNormalization(args?: BatchNormArgs): tf.layers.Layer {
  return new FusedBatchNormalization(args);
}
