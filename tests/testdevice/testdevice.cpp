// A minimal out-of-tree device for testing the suite itself: PrivateUse1, renamed "testdev".
//
// Its memory is ordinary host memory (malloc), but torch sees a device of its own: tensors on it
// carry the PrivateUse1 dispatch key, so every operator must go through this file. It implements
// what any backend must (allocation, a device guard, empty/empty_strided, copies to and from the
// CPU, views (view, unfold, view_as_real), as_strided, set_, reading a scalar, the hooks that
// autograd and RNG ask for) and sends every other operator to the CPU kernels through PyTorch's boxed CPU fallback, which copies
// the arguments to the CPU, runs the kernel, and copies results (and in-place updates) back.
// It is one device (index 0) with one stream, and knows no events, pinned memory or IPC.

#include <ATen/CPUGeneratorImpl.h>
#include <ATen/EmptyTensor.h>
#include <ATen/detail/PrivateUse1HooksInterface.h>
#include <ATen/native/CPUFallback.h>
#include <ATen/native/Resize.h>
#include <ATen/ops/as_strided_cpu_dispatch.h>
#include <ATen/ops/set_cpu_dispatch.h>
#include <c10/core/impl/DeviceGuardImplInterface.h>
#include <torch/extension.h>

#include <cstdlib>
#include <cstring>

namespace testdev {

constexpr c10::DeviceType kType = c10::DeviceType::PrivateUse1;
const c10::Device kDevice(kType, 0);

// ---- memory: host memory that torch believes lives on the device --------------------------
struct HostMemoryAllocator final : c10::Allocator {
  static void release(void* ptr) { std::free(ptr); }
  c10::DataPtr allocate(size_t bytes) override {
    void* ptr = bytes ? std::malloc(bytes) : nullptr;
    TORCH_CHECK(ptr || !bytes, "testdev: out of memory allocating ", bytes, " bytes");
    return {ptr, ptr, &release, kDevice};
  }
  c10::DeleterFnPtr raw_deleter() const override { return &release; }
  void copy_data(void* dest, const void* src, std::size_t count) const final { std::memcpy(dest, src, count); }
};
static HostMemoryAllocator allocator;
REGISTER_ALLOCATOR(kType, &allocator);

// ---- the device guard: one device, one stream ---------------------------------------------
struct Guard final : c10::impl::DeviceGuardImplInterface {
  c10::DeviceType type() const override { return kType; }
  c10::Device exchangeDevice(c10::Device) const override { return kDevice; }
  c10::Device getDevice() const override { return kDevice; }
  void setDevice(c10::Device d) const override {
    TORCH_CHECK(d.type() == kType && d.index() <= 0, "testdev has one device, index 0; asked for ", d);
  }
  void uncheckedSetDevice(c10::Device) const noexcept override {}
  c10::Stream getStream(c10::Device d) const noexcept override { return c10::Stream(c10::Stream::DEFAULT, d); }
  c10::Stream exchangeStream(c10::Stream s) const noexcept override { return s; }
  c10::DeviceIndex deviceCount() const noexcept override { return 1; }
  void synchronizeDevice(const c10::DeviceIndex) const override {}  // every kernel runs synchronously
};
C10_REGISTER_GUARD_IMPL(PrivateUse1, Guard);

// ---- random numbers: the CPU generator's algorithm, owned by the device -------------------
struct Generator final : at::CPUGeneratorImpl {
  Generator() {
    device_ = kDevice;
    key_set_ = c10::DispatchKeySet(c10::DispatchKey::PrivateUse1);
  }
};

const at::Generator& default_generator() {
  // Never destroyed: torch may still use it while the process exits.
  static const auto* generator = new at::Generator(at::make_generator<Generator>());
  return *generator;
}

// ---- hooks: what torch asks a PrivateUse1 backend about itself ----------------------------
struct Hooks final : at::PrivateUse1HooksInterface {
  void init() const override {}
  bool hasPrimaryContext(c10::DeviceIndex) const override { return true; }
  bool isBuilt() const override { return true; }
  bool isAvailable() const override { return true; }
  c10::DeviceIndex deviceCount() const override { return 1; }
  c10::DeviceIndex getCurrentDevice() const override { return 0; }
  void setCurrentDevice(c10::DeviceIndex) const override {}
  c10::DeviceIndex exchangeDevice(c10::DeviceIndex) const override { return 0; }
  c10::DeviceIndex maybeExchangeDevice(c10::DeviceIndex) const override { return 0; }
  const at::Generator& getDefaultGenerator(c10::DeviceIndex) const override { return default_generator(); }
  at::Generator getNewGenerator(c10::DeviceIndex) const override { return at::make_generator<Generator>(); }
  at::Device getDeviceFromPtr(void*) const override { return kDevice; }
};
static bool hooks_registered [[maybe_unused]] = [] {
  at::RegisterPrivateUse1HooksInterface(new Hooks());
  return true;
}();

// ---- the operators every backend implements itself ----------------------------------------
at::Tensor as_cpu(const at::Tensor& t) {  // the same memory, seen as a CPU tensor
  return at::from_blob(t.data_ptr(), t.sizes(), t.strides(), t.options().device(at::kCPU));
}

at::Tensor empty(c10::IntArrayRef size, std::optional<c10::ScalarType> dtype, std::optional<c10::Layout> layout,
                 std::optional<c10::Device> device, std::optional<bool> pin_memory,
                 std::optional<c10::MemoryFormat> memory_format) {
  TORCH_CHECK(c10::layout_or_default(layout) == c10::Layout::Strided, "testdev: strided tensors only");
  return at::detail::empty_generic(size, &allocator, c10::DispatchKeySet(c10::DispatchKey::PrivateUse1),
                                   c10::dtype_or_default(dtype), memory_format);
}

at::Tensor empty_strided(c10::IntArrayRef size, c10::IntArrayRef stride, std::optional<c10::ScalarType> dtype,
                         std::optional<c10::Layout> layout, std::optional<c10::Device> device,
                         std::optional<bool> pin_memory) {
  TORCH_CHECK(c10::layout_or_default(layout) == c10::Layout::Strided, "testdev: strided tensors only");
  return at::detail::empty_strided_generic(size, stride, &allocator,
                                           c10::DispatchKeySet(c10::DispatchKey::PrivateUse1),
                                           c10::dtype_or_default(dtype));
}

at::Tensor copy_from(const at::Tensor& self, const at::Tensor& dst, bool non_blocking) {
  // One side or both are testdev tensors, whose memory the CPU can read: copy as CPU tensors.
  at::Tensor from = self.is_cpu() ? self : as_cpu(self);
  at::Tensor to = dst.is_cpu() ? dst : as_cpu(dst);
  at::native::copy_(to, from, non_blocking);
  return dst;
}

at::Tensor copy_from_and_resize(const at::Tensor& self, const at::Tensor& dst) {
  at::native::resize_(dst, self.sizes(), std::nullopt);
  return copy_from(self, dst, false);
}

at::Scalar local_scalar_dense(const at::Tensor& self) { return at::native::_local_scalar_dense_cpu(as_cpu(self)); }

at::Tensor view(const at::Tensor& self, c10::SymIntArrayRef size) {
  return at::native::view(self, C10_AS_INTARRAYREF_SLOW(size));
}

at::Tensor as_strided(const at::Tensor& self, c10::SymIntArrayRef size, c10::SymIntArrayRef stride,
                      std::optional<c10::SymInt> offset) {
  return at::cpu::as_strided_symint(self, size, stride, std::move(offset));
}

at::Tensor reshape_alias(const at::Tensor& self, c10::SymIntArrayRef size, c10::SymIntArrayRef stride) {
  return at::native::_reshape_alias(self, C10_AS_INTARRAYREF_SLOW(size), C10_AS_INTARRAYREF_SLOW(stride));
}

// unfold and view_as_real are view operators: the boxed CPU fallback cannot share storage across
// devices (torch warns "View operators don't support falling back to run on the CPU") and would
// return copies, so the device runs their device-independent view kernels, as for view above.
at::Tensor unfold(const at::Tensor& self, int64_t dimension, int64_t size, int64_t step) {
  return at::native::unfold(self, dimension, size, step);
}

at::Tensor view_as_real(const at::Tensor& self) { return at::native::view_as_real(self); }

const at::Tensor& resize(const at::Tensor& self, c10::SymIntArrayRef size, std::optional<at::MemoryFormat> format) {
  return at::native::resize_(self, C10_AS_INTARRAYREF_SLOW(size), format);
}

at::Tensor& set_tensor(at::Tensor& self, const at::Tensor& source) { return at::native::set_tensor_(self, source); }
at::Tensor& set_storage(at::Tensor& self, at::Storage source) { return at::native::set_(self, source); }
at::Tensor& set_storage_offset(at::Tensor& self, at::Storage source, int64_t offset, c10::IntArrayRef size,
                               c10::IntArrayRef stride) {
  return at::cpu::set_(self, source, offset, size, stride);
}

// The CPU kernels accept CPU generators only: an operator that takes a generator is lent a CPU
// generator holding the device generator's state (the device's default one when none is given),
// and the device generator takes the advanced state back afterwards.
void cpu_fallback(const c10::OperatorHandle& op, torch::jit::Stack* stack) {
  const auto& arguments = op.schema().arguments();
  const auto first = stack->size() - arguments.size();
  std::vector<std::pair<at::Generator, at::Generator>> lent;  // (device generator, CPU stand-in)
  for (size_t i = 0; i < arguments.size(); ++i) {
    c10::IValue& value = (*stack)[first + i];
    const bool generator_argument = arguments[i].type()->str() == "Generator?";
    if (!generator_argument || (!value.isNone() && value.toGenerator().device().type() != kType)) {
      continue;
    }
    at::Generator own = value.isNone() ? default_generator() : value.toGenerator();
    at::Generator cpu = at::make_generator<at::CPUGeneratorImpl>();
    {
      std::lock_guard<std::mutex> lock(own.mutex());
      cpu.set_state(own.get_state());
    }
    value = c10::IValue(cpu);
    lent.emplace_back(own, cpu);
  }
  at::native::cpu_fallback(op, stack);
  for (auto& [own, cpu] : lent) {
    std::lock_guard<std::mutex> lock(own.mutex());
    own.set_state(cpu.get_state());
  }
}

TORCH_LIBRARY_IMPL(aten, PrivateUse1, m) {
  m.impl("empty.memory_format", empty);
  m.impl("empty_strided", empty_strided);
  m.impl("_copy_from", copy_from);
  m.impl("_copy_from_and_resize", copy_from_and_resize);
  m.impl("_local_scalar_dense", local_scalar_dense);
  m.impl("view", view);
  m.impl("as_strided", as_strided);
  m.impl("_reshape_alias", reshape_alias);
  m.impl("unfold", unfold);
  m.impl("view_as_real", view_as_real);
  m.impl("resize_", resize);
  m.impl("set_.source_Tensor", set_tensor);
  m.impl("set_.source_Storage", set_storage);
  m.impl("set_.source_Storage_storage_offset", set_storage_offset);
}

// Convolutions dispatch to convolution_overrideable on backends that are not the CPU or CUDA;
// sending the whole convolution (and its backward) to the CPU lets the CPU pick its kernel.
TORCH_LIBRARY_IMPL(aten, PrivateUse1, m) {
  m.impl("convolution", torch::CppFunction::makeFromBoxedFunction<&cpu_fallback>());
  m.impl("convolution_backward", torch::CppFunction::makeFromBoxedFunction<&cpu_fallback>());
}

TORCH_LIBRARY_IMPL(_, PrivateUse1, m) {
  m.fallback(torch::CppFunction::makeFromBoxedFunction<&cpu_fallback>());
}

void manual_seed(uint64_t seed) {  // torch.testdev.manual_seed_all
  auto generator = default_generator();
  std::lock_guard<std::mutex> lock(generator.mutex());
  generator.set_current_seed(seed);
}

}  // namespace testdev

PYBIND11_MODULE(TORCH_EXTENSION_NAME, module) {
  module.def("manual_seed", &testdev::manual_seed, "seed the device's default generator");
}
