// The compile-only stub's MonoBehaviour life cycle (Tests/CompileOnly~/UnityEngine.cs): the plugin's tests trust it to
// send the messages Unity sends, in Unity's order, so a script's OnEnable/OnDisable runs in a test as in a game.
using System.Collections.Generic;
using NUnit.Framework;
using UnityEngine;

namespace WorldBridge.Tests
{
    /// <summary>A script that notes the Unity messages it gets.</summary>
    public sealed class Noted : MonoBehaviour
    {
        public readonly List<string> Messages = new List<string>();
        void Awake() => Messages.Add("Awake");
        void OnEnable() => Messages.Add("OnEnable");
        void OnDisable() => Messages.Add("OnDisable");
        void OnDestroy() => Messages.Add("OnDestroy");
    }

    [TestFixture]
    public class UnityStubTests
    {
        [Test]
        public void AddComponentOnAnActiveObjectRunsAwakeThenOnEnable()
        {
            var noted = new GameObject("On").AddComponent<Noted>();
            CollectionAssert.AreEqual(new[] { "Awake", "OnEnable" }, noted.Messages);
            Object.Destroy(noted.gameObject);
            CollectionAssert.AreEqual(new[] { "Awake", "OnEnable", "OnDisable", "OnDestroy" }, noted.Messages);
        }

        [Test]
        public void OnAnInactiveObjectAwakeWaitsForTheFirstActivation()
        {
            var go = new GameObject("Off");
            go.SetActive(false);
            var noted = go.AddComponent<Noted>();
            CollectionAssert.IsEmpty(noted.Messages);
            noted.enabled = false;
            go.SetActive(true); // awake even while disabled, as in Unity
            go.SetActive(false);
            go.SetActive(true);
            noted.enabled = true;
            CollectionAssert.AreEqual(new[] { "Awake", "OnEnable" }, noted.Messages);
        }

        [Test]
        public void AScriptNeverActiveGetsNoOnDestroy()
        {
            var go = new GameObject("Off");
            go.SetActive(false);
            var noted = go.AddComponent<Noted>();
            Object.Destroy(go);
            CollectionAssert.IsEmpty(noted.Messages, "Unity sends OnDestroy only to scripts that were once active");
        }

        [Test]
        public void ARenderersMaterialIsACopyOfItsSharedMaterialThatItDrawsFromThenOn()
        {
            var renderer = new GameObject("Quad").AddComponent<Renderer>();
            var shared = new Material();
            renderer.sharedMaterial = shared;
            var own = renderer.material;
            Assert.AreNotSame(shared, own, "Unity instantiates the shared material on the first get");
            Assert.AreSame(own, renderer.sharedMaterial, "the renderer draws with its copy");
            Assert.AreSame(own, renderer.material, "a later get returns the same copy");
        }

        [Test]
        public void ARendererKeepsACopyOfThePropertyBlockItIsGivenAndNullClearsIt()
        {
            var renderer = new GameObject("Quad").AddComponent<Renderer>();
            var texture = new Texture2D(1, 1, TextureFormat.RGB24, false);
            var block = new MaterialPropertyBlock();
            block.SetTexture("_MainTex", texture);
            renderer.SetPropertyBlock(block);
            block.Clear();
            var read = new MaterialPropertyBlock();
            renderer.GetPropertyBlock(read);
            Assert.AreSame(texture, read.GetTexture("_MainTex"), "Unity copies a block's values into the renderer");
            renderer.SetPropertyBlock(null);
            renderer.GetPropertyBlock(read);
            Assert.IsTrue(read.isEmpty && !renderer.HasPropertyBlock(), "null clears the renderer's overrides");
        }

        [Test]
        public void AChildWakesWithItsParent()
        {
            var parent = new GameObject("Parent");
            parent.SetActive(false);
            var child = new GameObject("Child");
            child.transform.SetParent(parent.transform, false);
            var noted = child.AddComponent<Noted>();
            parent.SetActive(true);
            CollectionAssert.AreEqual(new[] { "Awake", "OnEnable" }, noted.Messages);
        }
    }
}
