// engine/device.cpp: device names as users write them ("cpu", "cuda", "cuda:1").
#include "engine/device.h"

#include <cctype>

#include "engine/cuda/runtime.h"
#include "engine/error.h"

namespace retort {

Device parse_device(const std::string& name) {
    if (name == "cpu") return Device::cpu();
    if (name == "cuda") return Device::cuda(0);
    if (name.rfind("cuda:", 0) == 0 && name.size() > 5 && name.size() <= 8) {
        bool digits = true;
        for (std::size_t i = 5; i < name.size(); ++i)
            digits = digits && std::isdigit(static_cast<unsigned char>(name[i]));
        if (digits) return Device::cuda(std::stoi(name.substr(5)));
    }
    fail("unknown device \"", name, "\" (expected cpu, cuda or cuda:N)");
}

void require_available(Device device) {
    if (device.is_cpu()) return;
    require(cuda::built(), "device ", device.str(),
            ": this build of retort has no CUDA backend (configure with the CUDA toolkit present, "
            "or -DRETORT_CUDA=ON)");
    const int count = cuda::device_count();
    require(count > 0, "device ", device.str(), ": no CUDA device is visible on this machine");
    require(device.index < count, "device ", device.str(), ": only ", count,
            count == 1 ? " CUDA device is" : " CUDA devices are", " visible (cuda:0 to cuda:",
            count - 1, ")");
}

}  // namespace retort
