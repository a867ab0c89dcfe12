// The one list of tessera-bench scenarios. A new scenario is a new file implementing Scenario
// (scenario.h) plus one line here.
#include "bench/tool/scenario.h"

namespace tessera::bench {

std::vector<std::unique_ptr<Scenario>> AllScenarios() {
  std::vector<std::unique_ptr<Scenario>> all;
  all.push_back(NewSignScenario());
  all.push_back(NewWorkloadScenario());
  all.push_back(NewStreamsScenario());
  all.push_back(NewPropagationScenario());
  all.push_back(NewScaleScenario());
  all.push_back(NewFootprintScenario());
  return all;
}

}  // namespace tessera::bench
