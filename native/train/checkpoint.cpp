#include "checkpoint.h"

#include <sys/stat.h>

#include <cerrno>
#include <cstring>
#include <stdexcept>
#include <vector>

#include "../io/file.h"
#include "../io/safetensors.h"

namespace troupe {
namespace {

void make_dirs(const std::string& dir) {
  std::string cur;
  for (size_t i = 0; i <= dir.size(); ++i) {
    if (i == dir.size() || dir[i] == '/') {
      if (!cur.empty() && ::mkdir(cur.c_str(), 0755) != 0 && errno != EEXIST)
        throw io::IoError("cannot create directory " + cur + ": " + std::strerror(errno));
    }
    if (i < dir.size()) cur.push_back(dir[i]);
  }
}

bool file_exists(const std::string& p) {
  struct stat st;
  return ::stat(p.c_str(), &st) == 0;
}

// Device -> host staging of one tensor at a time, so saving never needs a second full copy.
io::TensorToWrite device_tensor(Backend* be, const float* base, std::string name,
                                std::vector<int64_t> shape, size_t offset, size_t numel) {
  io::TensorToWrite t;
  t.name = std::move(name);
  t.shape = std::move(shape);
  t.fill = [be, base, offset, numel](float* dst) {
    be->download(dst, base + offset, numel * sizeof(float));
  };
  return t;
}

}  // namespace

void save_checkpoint(Qwen3Model& m, const std::string& dir, bool with_optimizer) {
  make_dirs(dir);
  io::write_file_atomic(dir + "/config.json", config_to_json(m.cfg));
  std::vector<io::TensorToWrite> ts;
  for (const auto& t : m.layout.tensors)
    ts.push_back(device_tensor(m.be, m.params.f32(), t.name, t.shape, t.offset, t.numel));
  // transformers refuses safetensors archives without a recognised "format".
  io::write_safetensors(dir + "/model.safetensors", ts, {{"format", "pt"}});
  if (with_optimizer && !m.adam_m.empty()) {
    const int64_t n = static_cast<int64_t>(m.layout.total);
    std::vector<io::TensorToWrite> os;
    os.push_back(device_tensor(m.be, m.adam_m.f32(), "adamw.exp_avg", {n}, 0, m.layout.total));
    os.push_back(device_tensor(m.be, m.adam_v.f32(), "adamw.exp_avg_sq", {n}, 0, m.layout.total));
    // The per-role running-average gradients feed the coherence diagnostics and damping, so a
    // resumed run must restore them to continue exactly.
    for (auto& [role, buf] : m.role_ema)
      os.push_back(device_tensor(m.be, buf.f32(), "role_ema." + role, {n}, 0, m.layout.total));
    io::write_safetensors(dir + "/optimizer.safetensors", os,
                          {{"format", "troupe-adamw"}, {"step", std::to_string(m.opt_steps)},
                           {"parameters", std::to_string(n)}});
  }
}

std::unique_ptr<Qwen3Model> load_checkpoint(const std::string& dir, Backend* be) {
  const std::string cfg_path = dir + "/config.json";
  if (!file_exists(cfg_path))
    throw io::IoError("checkpoint " + dir + " has no config.json (expected a Hugging Face model directory)");
  ModelConfig cfg = config_from_json(io::read_file(cfg_path));
  auto m = std::make_unique<Qwen3Model>(cfg, be);
  io::SafetensorsCheckpoint ck = io::SafetensorsCheckpoint::open_dir(dir);
  std::vector<float> stage;
  for (const auto& t : m->layout.tensors) {
    if (!ck.has(t.name))
      throw std::runtime_error("checkpoint " + dir + ": tensor '" + t.name + "' is missing");
    const io::TensorInfo& info = ck.info(t.name);
    if (info.shape != t.shape) {
      std::string want, got;
      for (auto d : t.shape) want += std::to_string(d) + ",";
      for (auto d : info.shape) got += std::to_string(d) + ",";
      throw std::runtime_error("checkpoint " + dir + ": tensor '" + t.name + "' has shape [" + got +
                               "] but config.json implies [" + want + "]");
    }
    stage.resize(t.numel);
    ck.read_f32(t.name, stage.data(), t.numel);
    be->upload(m->params.f32() + t.offset, stage.data(), t.numel * sizeof(float));
  }
  m->params_changed();
  const std::string opt_path = dir + "/optimizer.safetensors";
  if (file_exists(opt_path)) {
    io::SafetensorsReader r = io::SafetensorsReader::open(opt_path);
    const size_t n = m->layout.total;
    for (const char* name : {"adamw.exp_avg", "adamw.exp_avg_sq"})
      if (!r.has(name) || r.info(name).numel != static_cast<int64_t>(n))
        throw std::runtime_error(opt_path + ": tensor '" + name + "' is missing or has the wrong size");
    auto it = r.metadata().find("step");
    if (it == r.metadata().end()) throw std::runtime_error(opt_path + ": metadata 'step' is missing");
    m->ensure_optimizer();
    stage.resize(n);
    r.read_f32("adamw.exp_avg", stage.data(), n);
    be->upload(m->adam_m.data(), stage.data(), n * sizeof(float));
    r.read_f32("adamw.exp_avg_sq", stage.data(), n);
    be->upload(m->adam_v.data(), stage.data(), n * sizeof(float));
    for (const auto& name : r.names()) {
      if (name.rfind("role_ema.", 0) != 0) continue;
      if (r.info(name).numel != static_cast<int64_t>(n))
        throw std::runtime_error(opt_path + ": tensor '" + name + "' has the wrong size");
      DeviceBuffer e(be, &m->tracker, MemCategory::Grads, n * sizeof(float));
      r.read_f32(name, stage.data(), n);
      be->upload(e.data(), stage.data(), n * sizeof(float));
      m->role_ema.emplace(name.substr(9), std::move(e));
    }
    try {
      m->opt_steps = std::stoi(it->second);
    } catch (const std::exception&) {
      throw std::runtime_error(opt_path + ": metadata 'step' is not an integer");
    }
  }
  return m;
}

}  // namespace troupe
