// WorldInput's rule checks, run under mono against Tests/CompileOnly~, Unity's API declared for the compiler (its
// Input reads no buttons there, so held buttons are not simulated: the checks and what they decide are).
using System.Collections.Generic;
using NUnit.Framework;
using WorldBridge;
using WorldBridge.Core;

namespace WorldBridge.Tests
{
    [TestFixture]
    public class WorldInputTests
    {
        static SessionInfo TwoActionSession() => SessionInfo.From(new MsgMap
        {
            { "type", "session" }, { "session_id", "s1" }, { "backend_kind", "sandbox" }, { "backend_name", "fake" },
            { "mode", "step" }, { "fps", 24.0 }, { "width", 2 }, { "height", 1 }, { "action_names", new List<object> { "noop", "right" } },
            { "num_latent_actions", 2 }, { "event_types", new List<object>() }, { "settings", new MsgMap() },
            { "frame_index", 0 }, { "epoch", 0 }, { "resumed", false },
        }, null);

        [Test]
        public void RulesForActionsTheBackendLacksSendNothingAndAnUnknownIdleSendsLatentZero()
        {
            var input = new WorldInput { idleAction = "wait" };
            var right = new ActionRule("right", "right");
            var dash = new ActionRule("dash", "right");
            var latent9 = new ActionRule("x", "jump") { latentAction = 9 };
            input.rules = new List<ActionRule> { dash, latent9, right };
            var unknown = input.CheckRules(TwoActionSession());
            CollectionAssert.AreEqual(new[] { "dash", "latent 9", "idle wait" }, unknown);
            Assert.IsFalse(input.Usable(dash));
            Assert.IsFalse(input.Usable(latent9));
            Assert.IsTrue(input.Usable(right));
            Assert.AreEqual(0, input.IdleToSend());
            input.idleAction = "noop";
            Assert.AreEqual(new[] { "dash", "latent 9" }, input.CheckRules(TwoActionSession()).ToArray());
            Assert.AreEqual("noop", input.IdleToSend());
        }

        [Test]
        public void DescribeMakesNoNewStringPerCall()
        {
            var rule = new ActionRule("right", "right");
            Assert.AreSame(rule.Describe(), rule.Describe());
            rule.latentAction = 3;
            Assert.AreEqual("latent action 3", rule.Describe());
        }
    }
}
