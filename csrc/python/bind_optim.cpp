// Fused optimizer steps: fastdl._C.<name>_step(params, grads, <state lists>, <steps>, hyper...).
// One call per param group; the Python optimizers (fastdl/optim/) only collect the lists.
#include "ops/optim.h"
#include "python/common.h"

namespace fastdl::py {

namespace {

using TL = std::vector<Tensor>;
using DL = std::vector<double>;

int64_t total(const TL& ps) {
  int64_t n = 0;
  for (const Tensor& p : ps) n += p.defined() ? p.numel() : 0;
  return n;
}

// Releases the GIL only when the group is large enough for the release to pay off.
void run(const char* name, OptimKind k, const OptimHyper& h, const TL& ps, const TL& gs,
         const std::vector<TL>& st, const DL& steps, const DL& c0 = {}, const DL& c1 = {}) {
  if (total(ps) < (1 << 16)) optim_step(name, k, h, ps, gs, st, steps, c0, c1);
  else {
    nb::gil_scoped_release rel;
    optim_step(name, k, h, ps, gs, st, steps, c0, c1);
  }
  for (const Tensor& p : ps) bump_version(p);  // the parameters were written in place
}

}  // namespace

void init_optim(nb::module_& m) {
  m.def("sgd_step", [](const TL& ps, const TL& gs, const TL& bufs, const std::vector<bool>& fresh, double lr,
                       double momentum, double dampening, double weight_decay, bool nesterov, bool maximize) {
    DL steps(fresh.size());  // step 1 marks a new momentum buffer
    for (size_t i = 0; i < fresh.size(); ++i) steps[i] = fresh[i] ? 1.0 : 2.0;
    OptimHyper h;
    h.lr = lr; h.momentum = momentum; h.dampening = dampening; h.weight_decay = weight_decay;
    h.nesterov = nesterov; h.maximize = maximize;
    run("SGD", OptimKind::sgd, h, ps, gs, {bufs}, steps);
  }, "params"_a, "grads"_a, "momentum_buffers"_a, "fresh"_a, "lr"_a, "momentum"_a, "dampening"_a,
     "weight_decay"_a, "nesterov"_a, "maximize"_a,
     "SGD step over a param group; fresh[i] is True when momentum_buffers[i] is new (takes the gradient).");

  m.def("adam_step", [](const TL& ps, const TL& gs, const TL& m1, const TL& m2, const TL& mx, const DL& steps,
                        double lr, double beta1, double beta2, double eps, double weight_decay, bool amsgrad,
                        bool maximize, bool decoupled) {
    OptimHyper h;
    h.lr = lr; h.beta1 = beta1; h.beta2 = beta2; h.eps = eps; h.weight_decay = weight_decay;
    h.amsgrad = amsgrad; h.maximize = maximize; h.decoupled = decoupled;
    run(decoupled ? "AdamW" : "Adam", OptimKind::adam, h, ps, gs, {m1, m2, mx}, steps);
  }, "params"_a, "grads"_a, "exp_avgs"_a, "exp_avg_sqs"_a, "max_exp_avg_sqs"_a, "steps"_a, "lr"_a, "beta1"_a,
     "beta2"_a, "eps"_a, "weight_decay"_a, "amsgrad"_a, "maximize"_a, "decoupled"_a,
     "Adam / AdamW (decoupled=True) step over a param group; steps[i] counts this update.");

  m.def("adagrad_step", [](const TL& ps, const TL& gs, const TL& sums, const DL& steps, double lr, double lr_decay,
                           double weight_decay, double eps, bool maximize) {
    OptimHyper h;
    h.lr = lr; h.lr_decay = lr_decay; h.weight_decay = weight_decay; h.eps = eps; h.maximize = maximize;
    run("Adagrad", OptimKind::adagrad, h, ps, gs, {sums}, steps);
  }, "params"_a, "grads"_a, "state_sums"_a, "steps"_a, "lr"_a, "lr_decay"_a, "weight_decay"_a, "eps"_a,
     "maximize"_a, "Adagrad step over a param group.");

  m.def("rmsprop_step", [](const TL& ps, const TL& gs, const TL& sq, const TL& bufs, const TL& gavg, double lr,
                           double alpha, double eps, double weight_decay, double momentum, bool centered,
                           bool maximize) {
    OptimHyper h;
    h.lr = lr; h.alpha = alpha; h.eps = eps; h.weight_decay = weight_decay; h.momentum = momentum;
    h.centered = centered; h.maximize = maximize;
    run("RMSprop", OptimKind::rmsprop, h, ps, gs, {sq, bufs, gavg}, {});
  }, "params"_a, "grads"_a, "square_avgs"_a, "momentum_buffers"_a, "grad_avgs"_a, "lr"_a, "alpha"_a, "eps"_a,
     "weight_decay"_a, "momentum"_a, "centered"_a, "maximize"_a, "RMSprop step over a param group.");

  m.def("lamb_step", [](const TL& ps, const TL& gs, const TL& m1, const TL& m2, const DL& steps, double lr,
                        double beta1, double beta2, double eps, double weight_decay, bool bias_correction,
                        bool maximize) {
    OptimHyper h;
    h.lr = lr; h.beta1 = beta1; h.beta2 = beta2; h.eps = eps; h.weight_decay = weight_decay;
    h.bias_correction = bias_correction; h.maximize = maximize;
    run("LAMB", OptimKind::lamb, h, ps, gs, {m1, m2}, steps);
  }, "params"_a, "grads"_a, "exp_avgs"_a, "exp_avg_sqs"_a, "steps"_a, "lr"_a, "beta1"_a, "beta2"_a, "eps"_a,
     "weight_decay"_a, "bias_correction"_a, "maximize"_a,
     "LAMB step (You et al. 2019) over a param group, trust ratio ||p|| / ||update|| per parameter.");
  m.def("nadam_step", [](const TL& ps, const TL& gs, const TL& m1, const TL& m2, const DL& steps,
                         const DL& mu_products, const DL& mu_products_next, double lr, double beta1, double beta2,
                         double eps, double weight_decay, double momentum_decay, bool decoupled, bool maximize) {
    OptimHyper h;
    h.lr = lr; h.beta1 = beta1; h.beta2 = beta2; h.eps = eps; h.weight_decay = weight_decay;
    h.momentum_decay = momentum_decay; h.decoupled = decoupled; h.maximize = maximize;
    run("NAdam", OptimKind::nadam, h, ps, gs, {m1, m2}, steps, mu_products, mu_products_next);
  }, "params"_a, "grads"_a, "exp_avgs"_a, "exp_avg_sqs"_a, "steps"_a, "mu_products"_a, "mu_products_next"_a,
     "lr"_a, "beta1"_a, "beta2"_a, "eps"_a, "weight_decay"_a, "momentum_decay"_a, "decoupled"_a, "maximize"_a,
     "NAdam step over a param group; mu_products[i] includes this step's mu, mu_products_next[i] the next one's.");

  m.def("radam_step", [](const TL& ps, const TL& gs, const TL& m1, const TL& m2, const DL& steps, double lr,
                         double beta1, double beta2, double eps, double weight_decay, bool decoupled, bool maximize) {
    OptimHyper h;
    h.lr = lr; h.beta1 = beta1; h.beta2 = beta2; h.eps = eps; h.weight_decay = weight_decay;
    h.decoupled = decoupled; h.maximize = maximize;
    run("RAdam", OptimKind::radam, h, ps, gs, {m1, m2}, steps);
  }, "params"_a, "grads"_a, "exp_avgs"_a, "exp_avg_sqs"_a, "steps"_a, "lr"_a, "beta1"_a, "beta2"_a, "eps"_a,
     "weight_decay"_a, "decoupled"_a, "maximize"_a, "RAdam step over a param group (rectified when rho_t > 5).");

  m.def("adamax_step", [](const TL& ps, const TL& gs, const TL& m1, const TL& inf, const DL& steps, double lr,
                          double beta1, double beta2, double eps, double weight_decay, bool maximize) {
    OptimHyper h;
    h.lr = lr; h.beta1 = beta1; h.beta2 = beta2; h.eps = eps; h.weight_decay = weight_decay; h.maximize = maximize;
    run("Adamax", OptimKind::adamax, h, ps, gs, {m1, inf}, steps);
  }, "params"_a, "grads"_a, "exp_avgs"_a, "exp_infs"_a, "steps"_a, "lr"_a, "beta1"_a, "beta2"_a, "eps"_a,
     "weight_decay"_a, "maximize"_a, "Adamax step over a param group.");

  m.def("adadelta_step", [](const TL& ps, const TL& gs, const TL& sq, const TL& acc, double lr, double rho,
                            double eps, double weight_decay, bool maximize) {
    OptimHyper h;
    h.lr = lr; h.rho = rho; h.eps = eps; h.weight_decay = weight_decay; h.maximize = maximize;
    run("Adadelta", OptimKind::adadelta, h, ps, gs, {sq, acc}, {});
  }, "params"_a, "grads"_a, "square_avgs"_a, "acc_deltas"_a, "lr"_a, "rho"_a, "eps"_a, "weight_decay"_a,
     "maximize"_a, "Adadelta step over a param group.");

  m.def("rprop_step", [](const TL& ps, const TL& gs, const TL& prevs, const TL& step_sizes, double eta_minus,
                         double eta_plus, double step_min, double step_max, bool maximize) {
    OptimHyper h;
    h.eta_minus = eta_minus; h.eta_plus = eta_plus; h.step_min = step_min; h.step_max = step_max;
    h.maximize = maximize;
    run("Rprop", OptimKind::rprop, h, ps, gs, {prevs, step_sizes}, {});
  }, "params"_a, "grads"_a, "prevs"_a, "step_sizes"_a, "eta_minus"_a, "eta_plus"_a, "step_min"_a, "step_max"_a,
     "maximize"_a, "Rprop step over a param group.");

  m.def("asgd_step", [](const TL& ps, const TL& gs, const TL& axs, const DL& etas, const DL& mus, double lambd,
                        double weight_decay, bool maximize) {
    OptimHyper h;
    h.lambd = lambd; h.weight_decay = weight_decay; h.maximize = maximize;
    run("ASGD", OptimKind::asgd, h, ps, gs, {axs}, {}, etas, mus);
  }, "params"_a, "grads"_a, "axs"_a, "etas"_a, "mus"_a, "lambd"_a, "weight_decay"_a, "maximize"_a,
     "ASGD step over a param group with each parameter's current eta and mu.");
}

}  // namespace fastdl::py
